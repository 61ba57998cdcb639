package presentation

import (
	"encoding/json"
	"strings"
	"testing"
)

// decode round-trips a document through JSON, so the tests check what
// clients read, not Go values.
func decode(t *testing.T, doc any) map[string]any {
	t.Helper()
	b, err := Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func obj(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: want an object, got %T", what, v)
	}
	return m
}

func one(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	a, ok := v.([]any)
	if !ok || len(a) != 1 {
		t.Fatalf("%s: want a list of one, got %v", what, v)
	}
	return obj(t, a[0], what)
}

// checkLang checks a language map: an object of lists of strings.
func checkLang(t *testing.T, v any, what string) {
	t.Helper()
	m := obj(t, v, what)
	if len(m) == 0 {
		t.Fatalf("%s: empty language map", what)
	}
	for k, vals := range m {
		a, ok := vals.([]any)
		if !ok || len(a) == 0 {
			t.Fatalf("%s[%s]: want a list of strings, got %v", what, k, vals)
		}
		for _, s := range a {
			if _, ok := s.(string); !ok {
				t.Fatalf("%s[%s]: %v is not a string", what, k, s)
			}
		}
	}
}

func TestManifest(t *testing.T) {
	u := URLs{Base: "https://img.example.org/x"}
	tests := []struct {
		img        Image
		manifest   string
		service    string
		label      string
		thumbW     float64
		thumbH     float64
		bodyFormat string
	}{
		{Image{ID: "mandelbrot.tif", Width: 6144, Height: 4608}, "https://img.example.org/x/iiif/presentation/3/mandelbrot.tif/manifest",
			"https://img.example.org/x/iiif/3/mandelbrot.tif", "mandelbrot.tif", 256, 192, "image/jpeg"},
		{Image{ID: "maps/sheet 4.jp2", Label: "Sheet 4", Width: 100, Height: 3000, Format: "image/jp2"},
			"https://img.example.org/x/iiif/presentation/3/maps%2Fsheet%204.jp2/manifest",
			"https://img.example.org/x/iiif/3/maps%2Fsheet%204.jp2", "Sheet 4", 9, 256, "image/jp2"},
		{Image{ID: "tiny", Width: 10, Height: 5}, "https://img.example.org/x/iiif/presentation/3/tiny/manifest",
			"https://img.example.org/x/iiif/3/tiny", "tiny", 10, 5, "image/jpeg"},
	}
	for _, tc := range tests {
		t.Run(tc.img.ID, func(t *testing.T) {
			m := decode(t, Manifest(u, tc.img))
			if m["@context"] != Context || m["type"] != "Manifest" || m["id"] != tc.manifest {
				t.Fatalf("head: %v %v %v", m["@context"], m["type"], m["id"])
			}
			checkLang(t, m["label"], "label")
			if got := obj(t, m["label"], "label")["none"].([]any)[0]; got != tc.label {
				t.Errorf("label %v, want %q", got, tc.label)
			}
			checkLang(t, m["summary"], "summary")
			th := one(t, m["thumbnail"], "thumbnail")
			if th["type"] != "Image" || th["width"] != tc.thumbW || th["height"] != tc.thumbH ||
				!strings.HasPrefix(th["id"].(string), tc.service+"/full/") {
				t.Errorf("thumbnail %v", th)
			}
			canvas := one(t, m["items"], "items")
			if canvas["type"] != "Canvas" || canvas["width"] != float64(tc.img.Width) || canvas["height"] != float64(tc.img.Height) {
				t.Fatalf("canvas %v", canvas)
			}
			if !strings.HasPrefix(canvas["id"].(string), tc.manifest) {
				t.Errorf("canvas id %v not under the manifest", canvas["id"])
			}
			page := one(t, canvas["items"], "canvas items")
			if id, _ := page["id"].(string); page["type"] != "AnnotationPage" || id == "" {
				t.Fatalf("page %v", page)
			}
			anno := one(t, page["items"], "page items")
			if anno["type"] != "Annotation" || anno["motivation"] != "painting" || anno["target"] != canvas["id"] {
				t.Fatalf("annotation %v", anno)
			}
			body := obj(t, anno["body"], "body")
			if body["type"] != "Image" || body["format"] != tc.bodyFormat ||
				body["width"] != float64(tc.img.Width) || body["height"] != float64(tc.img.Height) ||
				body["id"] != tc.service+"/full/max/0/default.jpg" {
				t.Fatalf("body %v", body)
			}
			svc := one(t, body["service"], "service")
			if svc["id"] != tc.service || svc["type"] != "ImageService3" || svc["profile"] != "level2" {
				t.Fatalf("service %v", svc)
			}
			for _, k := range []string{"homepage", "seeAlso", "partOf"} {
				r := one(t, m[k], k)
				id, _ := r["id"].(string)
				typ, _ := r["type"].(string)
				if id == "" || typ == "" {
					t.Errorf("%s: %v", k, r)
				}
			}
		})
	}
}

func TestCollection(t *testing.T) {
	u := URLs{Base: "http://h"}
	imgs := func(n int) []Image {
		var out []Image
		for i := range n {
			out = append(out, Image{ID: strings.Repeat("a", i+1), Width: 100, Height: 50})
		}
		return out
	}
	tests := []struct {
		name      string
		imgs      []Image
		total     int
		per       int
		wantItems int
		wantType  string
	}{
		{"empty", nil, 0, 10, 0, ""},
		{"one page", imgs(3), 3, 10, 3, "Manifest"},
		{"exactly one page", imgs(10), 10, 10, 10, "Manifest"},
		{"paged", nil, 25, 10, 3, "Collection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := decode(t, Collection(u, "All images", tc.imgs, tc.total, tc.per))
			if c["@context"] != Context || c["type"] != "Collection" || c["id"] != "http://h/iiif/presentation/3/collection" {
				t.Fatalf("head %v", c)
			}
			checkLang(t, c["label"], "label")
			items, ok := c["items"].([]any)
			if !ok || len(items) != tc.wantItems {
				t.Fatalf("items %v, want %d", c["items"], tc.wantItems)
			}
			for i, it := range items {
				r := obj(t, it, "item")
				checkLang(t, r["label"], "item label")
				if r["type"] != tc.wantType {
					t.Errorf("item %d type %v, want %s", i, r["type"], tc.wantType)
				}
				if tc.wantType == "Collection" && r["id"] != u.Collection(i+1) {
					t.Errorf("page %d id %v", i+1, r["id"])
				}
				if tc.wantType == "Manifest" {
					one(t, r["thumbnail"], "thumbnail")
				}
			}
		})
	}
}

func TestPage(t *testing.T) {
	u := URLs{Base: "http://h"}
	p := decode(t, Page(u, "All", []Image{{ID: "k", Width: 2, Height: 2}}, 3, 21, 10))
	if p["id"] != "http://h/iiif/presentation/3/collection/3" || p["type"] != "Collection" || p["@context"] != Context {
		t.Fatalf("page head %v", p)
	}
	if got := obj(t, p["label"], "label")["en"].([]any)[0]; got != "All: images 21 to 21" {
		t.Errorf("label %v", got)
	}
	if one(t, p["partOf"], "partOf")["id"] != u.Collection(0) {
		t.Errorf("partOf %v", p["partOf"])
	}
	if one(t, p["items"], "items")["id"] != u.Manifest("k") {
		t.Errorf("items %v", p["items"])
	}
}

func TestFit(t *testing.T) {
	tests := []struct{ w, h, n, ww, wh int }{
		{6144, 4608, 256, 256, 192},
		{4608, 6144, 256, 192, 256},
		{100, 50, 256, 100, 50},
		{10000, 1, 256, 256, 1},
		{1, 1, 256, 1, 1},
	}
	for _, tc := range tests {
		if w, h := fit(tc.w, tc.h, tc.n); w != tc.ww || h != tc.wh {
			t.Errorf("fit(%d,%d,%d) = %d,%d, want %d,%d", tc.w, tc.h, tc.n, w, h, tc.ww, tc.wh)
		}
	}
}

func TestThumbnailWithoutSize(t *testing.T) {
	r := URLs{Base: "http://h"}.thumbnail(Image{ID: "a/b"})
	if r.ID != "http://h/iiif/3/a%2Fb/full/!256,256/0/default.jpg" || r.Width != 0 || r.Height != 0 {
		t.Errorf("%+v", r)
	}
}

// TestServiceURL: documents name the image service as the image
// server does (its info.json id and Link headers), whatever the base.
func TestServiceURL(t *testing.T) {
	for _, tc := range []struct{ base, id, want string }{
		{"https://example.org", "a.jpg", "https://example.org/iiif/3/a.jpg"},
		{"https://example.org/", "a/b", "https://example.org/iiif/3/a%2Fb"},
		{"https://example.org/", "sub/dir/x y#?.tif", "https://example.org/iiif/3/sub%2Fdir%2Fx%20y%23%3F.tif"},
		{"http://h:8080/pre/fix/", "ü%2F", "http://h:8080/pre/fix/iiif/3/%C3%BC%252F"},
	} {
		if got := (URLs{Base: tc.base}).Service(tc.id); got != tc.want {
			t.Errorf("%q %q: %s, want %s", tc.base, tc.id, got, tc.want)
		}
	}
}
