package iiif

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// compactJSON re-encodes a JSON text without spaces, keeping key order.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMarshalInfo3(t *testing.T) {
	// The complete response of 3.0 §5.9, with our own feature list and
	// without the extension context. Its maxArea is raised from 4000000 to
	// 6000000: the spec's example lists a 3000×2000 size, which breaks its
	// own rule that sizes be within the limits (§5.2), and MarshalInfo
	// enforces that rule.
	ii := ImageInfo{
		ID:        "https://example.org/image-service/abcd1234/1E34750D-38DB-4825-A38A-B60A345E591C",
		Width:     6000,
		Height:    4000,
		MaxWidth:  3000,
		MaxHeight: 2000,
		MaxArea:   6000000,
		Sizes:     []SizeEntry{{150, 100}, {600, 400}, {3000, 2000}},
		Tiles: []Tile{
			{Width: 512, ScaleFactors: []int{1, 2, 4}},
			{Width: 1024, Height: 2048, ScaleFactors: []int{8, 16}},
		},
		Rights:           "http://rightsstatements.org/vocab/InC-EDU/1.0/",
		PreferredFormats: []Format{"png", "gif"},
		ExtraFormats:     []Format{"png", "gif", "pdf"},
		ExtraQualities:   []Quality{"color", "gray"},
		Features:         []string{"canonicalLinkHeader", "rotationArbitrary", "profileLinkHeader"},
		Extra: map[string]any{
			"service": []map[string]string{{
				"id":      "https://example.org/service/example",
				"type":    "Service",
				"profile": "https://example.org/docs/example-service.html",
			}},
			// Extra may not override what MarshalInfo owns.
			"profile": "level0",
			"id":      "https://evil.example/",
			"rights":  "nope",
		},
	}
	got, err := MarshalInfo(V3, ii)
	if err != nil {
		t.Fatal(err)
	}
	want := compactJSON(t, `{
  "@context": "http://iiif.io/api/image/3/context.json",
  "id": "https://example.org/image-service/abcd1234/1E34750D-38DB-4825-A38A-B60A345E591C",
  "type": "ImageService3",
  "protocol": "http://iiif.io/api/image",
  "profile": "level2",
  "width": 6000,
  "height": 4000,
  "maxWidth": 3000,
  "maxHeight": 2000,
  "maxArea": 6000000,
  "sizes": [
    { "width": 150, "height": 100 },
    { "width": 600, "height": 400 },
    { "width": 3000, "height": 2000 }
  ],
  "tiles": [
    { "width": 512, "scaleFactors": [ 1, 2, 4 ] },
    { "width": 1024, "height": 2048, "scaleFactors": [ 8, 16 ] }
  ],
  "preferredFormats": [ "png", "gif"],
  "rights": "http://rightsstatements.org/vocab/InC-EDU/1.0/",
  "extraFormats": [ "png", "gif", "pdf" ],
  "extraQualities": [ "color", "gray" ],
  "extraFeatures": [ "canonicalLinkHeader", "rotationArbitrary", "profileLinkHeader" ],
  "service": [
    {
      "id": "https://example.org/service/example",
      "profile": "https://example.org/docs/example-service.html",
      "type": "Service"
    }
  ]
}`)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMarshalInfo3Minimal(t *testing.T) {
	// The minimal document of 3.0 §5.2 plus our default features; no
	// limits, so no sizeUpscaling (3.0 §5.7).
	got, err := MarshalInfo(V3, ImageInfo{ID: "https://example.org/iiif/3/abc", Width: 6000, Height: 4000})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"maxWidth", "maxHeight", "maxArea", "sizes", "tiles", "rights", "preferredFormats", "extraFormats", "extraQualities"} {
		if _, ok := m[k]; ok {
			t.Errorf("unset %s is present", k)
		}
	}
	if !strings.HasPrefix(string(got), `{"@context":"http://iiif.io/api/image/3/context.json","id":"https://example.org/iiif/3/abc","type":"ImageService3","protocol":"http://iiif.io/api/image","profile":"level2","width":6000,"height":4000,`) {
		t.Errorf("unexpected head: %s", got)
	}
	feats := toStrings(m["extraFeatures"])
	if !reflect.DeepEqual(feats, DefaultFeatures(V3, false)) || contains(feats, "sizeUpscaling") {
		t.Errorf("extraFeatures = %v", feats)
	}
	if len(feats) != 16 {
		t.Errorf("%d features, want the 16 of 3.0 §5.7 without sizeUpscaling", len(feats))
	}

	// With a width limit, upscaling is declared.
	got, err = MarshalInfo(V3, ImageInfo{ID: "x", Width: 10, Height: 10, MaxWidth: 5000})
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	_ = json.Unmarshal(got, &m)
	if feats := toStrings(m["extraFeatures"]); !contains(feats, "sizeUpscaling") || len(feats) != 17 {
		t.Errorf("extraFeatures = %v", feats)
	}
}

func TestMarshalInfo3Contexts(t *testing.T) {
	got, err := MarshalInfo(V3, ImageInfo{ID: "x", Width: 1, Height: 1, Contexts: []string{"http://example.org/extension/context1.json"}, Features: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"@context":["http://example.org/extension/context1.json","http://iiif.io/api/image/3/context.json"],"id":"x","type":"ImageService3","protocol":"http://iiif.io/api/image","profile":"level2","width":1,"height":1}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestMarshalInfo2(t *testing.T) {
	// The examples of 2.1 §5.2 and §5.3 together.
	ii := ImageInfo{
		ID:             "http://www.example.org/image-service/abcd1234/1E34750D-38DB-4825-A38A-B60A345E591C",
		Width:          6000,
		Height:         4000,
		Sizes:          []SizeEntry{{150, 100}, {600, 400}, {3000, 2000}},
		Tiles:          []Tile{{Width: 512, Height: 512, ScaleFactors: []int{1, 2, 4, 8, 16}}},
		ExtraFormats:   []Format{"gif", "pdf"},
		ExtraQualities: []Quality{"color", "gray"},
		MaxWidth:       6000,
		Features:       []string{"canonicalLinkHeader", "rotationArbitrary", "profileLinkHeader", "http://example.com/feature/"},
		Rights:         "http://rightsstatements.org/vocab/InC-EDU/1.0/",
		Extra:          map[string]any{"attribution": "Provided by Example Organization", "@id": "no", "license": "no"},
	}
	got, err := MarshalInfo(V2, ii)
	if err != nil {
		t.Fatal(err)
	}
	want := compactJSON(t, `{
  "@context" : "http://iiif.io/api/image/2/context.json",
  "@id" : "http://www.example.org/image-service/abcd1234/1E34750D-38DB-4825-A38A-B60A345E591C",
  "protocol" : "http://iiif.io/api/image",
  "width" : 6000,
  "height" : 4000,
  "sizes" : [
    {"width" : 150, "height" : 100},
    {"width" : 600, "height" : 400},
    {"width" : 3000, "height": 2000}
  ],
  "tiles": [
    {"width" : 512, "scaleFactors" : [1,2,4,8,16]}
  ],
  "profile" : [
    "http://iiif.io/api/image/2/level2.json",
    {
      "formats" : [ "gif", "pdf" ],
      "qualities" : [ "color", "gray" ],
      "supports" : [
          "canonicalLinkHeader", "rotationArbitrary", "profileLinkHeader", "http://example.com/feature/"
      ],
      "maxWidth" : 6000
    }
  ],
  "license" : "http://rightsstatements.org/vocab/InC-EDU/1.0/",
  "attribution" : "Provided by Example Organization"
}`)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMarshalInfo2Defaults(t *testing.T) {
	got, err := MarshalInfo(V2, ImageInfo{ID: "x", Width: 10, Height: 20, MaxArea: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Profile []json.RawMessage `json:"profile"`
	}
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Profile) != 2 || string(m.Profile[0]) != `"http://iiif.io/api/image/2/level2.json"` {
		t.Fatalf("profile = %s", got)
	}
	var p struct {
		Supports []string `json:"supports"`
		MaxArea  int64    `json:"maxArea"`
	}
	if err := json.Unmarshal(m.Profile[1], &p); err != nil {
		t.Fatal(err)
	}
	want := []string{"baseUriRedirect", "canonicalLinkHeader", "cors", "jsonldMediaType", "mirroring",
		"profileLinkHeader", "regionByPct", "regionByPx", "regionSquare", "rotationArbitrary",
		"rotationBy90s", "sizeAboveFull", "sizeByConfinedWh", "sizeByDistortedWh", "sizeByH",
		"sizeByPct", "sizeByW", "sizeByWh"}
	if !reflect.DeepEqual(p.Supports, want) || p.MaxArea != 1000 {
		t.Errorf("profile object = %s", m.Profile[1])
	}
	// Without formats, qualities, supports or limits there is nothing to
	// add to the compliance level, so the profile object is left out.
	got, _ = MarshalInfo(V2, ImageInfo{ID: "x", Width: 10, Height: 20, Features: []string{}})
	if !strings.Contains(string(got), `"profile":["http://iiif.io/api/image/2/level2.json"]`) {
		t.Errorf("got %s", got)
	}
}

func TestMarshalInfoErrors(t *testing.T) {
	base := ImageInfo{ID: "x", Width: 100, Height: 100}
	tests := map[string]func(*ImageInfo){
		"no id":            func(ii *ImageInfo) { ii.ID = "" },
		"zero width":       func(ii *ImageInfo) { ii.Width = 0 },
		"maxHeight alone":  func(ii *ImageInfo) { ii.MaxHeight = 10 },
		"negative limit":   func(ii *ImageInfo) { ii.MaxArea = -1 },
		"size over limit":  func(ii *ImageInfo) { ii.MaxWidth = 50; ii.Sizes = []SizeEntry{{60, 60}} },
		"size over height": func(ii *ImageInfo) { ii.MaxWidth = 50; ii.Sizes = []SizeEntry{{40, 60}} },
		"tile over area":   func(ii *ImageInfo) { ii.MaxArea = 100; ii.Tiles = []Tile{{Width: 11, ScaleFactors: []int{1}}} },
		"tile twice": func(ii *ImageInfo) {
			ii.Tiles = []Tile{{Width: 8, ScaleFactors: []int{1}}, {Width: 8, Height: 8, ScaleFactors: []int{2}}}
		},
		"tile no factors": func(ii *ImageInfo) { ii.Tiles = []Tile{{Width: 8}} },
		"bad factor":      func(ii *ImageInfo) { ii.Tiles = []Tile{{Width: 8, ScaleFactors: []int{0}}} },
		"bad extra":       func(ii *ImageInfo) { ii.Extra = map[string]any{"f": func() {}} },
	}
	for name, mod := range tests {
		ii := base
		mod(&ii)
		for _, v := range []Version{V2, V3} {
			if b, err := MarshalInfo(v, ii); err == nil {
				t.Errorf("%s, v%d: no error: %s", name, v, b)
			}
		}
	}
	if _, err := MarshalInfo(4, base); err == nil {
		t.Error("version 4 accepted")
	}
}

func TestConstants(t *testing.T) {
	if ContextURI(V3) != "http://iiif.io/api/image/3/context.json" || ContextURI(V2) != "http://iiif.io/api/image/2/context.json" {
		t.Error("context")
	}
	if ProfileURI(V3) != "http://iiif.io/api/image/3/level2.json" || ProfileURI(V2) != "http://iiif.io/api/image/2/level2.json" {
		t.Error("profile")
	}
	if JSONLDMediaType(V3) != `application/ld+json;profile="http://iiif.io/api/image/3/context.json"` || JSONLDMediaType(V2) != "application/ld+json" {
		t.Error("media type")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
