package pyramid

import (
	"errors"
	"image"
	"testing"
)

// dzsaveInfo is what `vips dzsave --layout iiif3 --tile-size 256` writes
// for a 1000×700 image.
const dzsaveInfo = `{"@context":"http://iiif.io/api/image/3/context.json","id":"https://example.com/iiif/DIR",
"type":"ImageService3","profile":"level0","protocol":"http://iiif.io/api/image",
"tiles":[{"scaleFactors":[2,1],"width":256}],"width":1000,"height":700}`

func TestParse(t *testing.T) {
	p, err := Parse([]byte(dzsaveInfo))
	if err != nil {
		t.Fatal(err)
	}
	if p.Width != 1000 || p.Height != 700 || p.TileWidth != 256 || p.TileHeight != 256 ||
		len(p.ScaleFactors) != 2 || p.ScaleFactors[0] != 1 || p.ScaleFactors[1] != 2 || p.V2 {
		t.Errorf("parsed %+v", p)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"width":0,"height":1,"tiles":[{"width":256,"scaleFactors":[1]}]}`,
		`{"width":10,"height":10}`,
		`{"width":10,"height":10,"tiles":[{"width":0,"scaleFactors":[1]}]}`,
		`{"width":10,"height":10,"tiles":[{"width":256,"scaleFactors":[]}]}`,
		`{"width":10,"height":10,"tiles":[{"width":256,"scaleFactors":[2,4]}]}`,
		`{"width":10,"height":10,"tiles":[{"width":256,"scaleFactors":[1,-2]}]}`,
		`{"width":10,"height":10,"tiles":[{"width":256,"scaleFactors":[1]}],"sizes":[{"width":20,"height":5}]}`,
		`{"width":"10","height":10,"tiles":[{"width":256,"scaleFactors":[1]}]}`,
	} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestMatch(t *testing.T) {
	p, err := Parse([]byte(dzsaveInfo))
	if err != nil {
		t.Fatal(err)
	}
	p.Sizes = []Size{{125, 88}, {250, 175}}
	cases := []struct {
		region image.Rectangle
		w, h   int
		key    string
	}{
		{image.Rect(0, 0, 256, 256), 256, 256, "0,0,256,256/256,256/0/default.jpg"},
		{image.Rect(768, 512, 1000, 700), 232, 188, "768,512,232,188/232,188/0/default.jpg"},
		{image.Rect(512, 0, 1000, 512), 244, 256, "512,0,488,512/244,256/0/default.jpg"},
		{image.Rect(512, 512, 1000, 700), 244, 94, "512,512,488,188/244,94/0/default.jpg"},
		{image.Rect(0, 0, 1000, 700), 250, 175, "full/250,175/0/default.jpg"},
		{image.Rect(0, 0, 256, 256), 128, 128, ""},  // scaled
		{image.Rect(1, 0, 257, 256), 256, 256, ""},  // misaligned
		{image.Rect(0, 0, 255, 256), 255, 256, ""},  // not a whole tile
		{image.Rect(0, 0, 1000, 700), 500, 350, ""}, // not stored
		{image.Rect(0, 0, 1000, 700), 1000 / 4, 175, "full/250,175/0/default.jpg"},
	}
	for _, tc := range cases {
		key, ok := p.Match(tc.region, tc.w, tc.h)
		if key != tc.key || ok != (tc.key != "") {
			t.Errorf("Match(%v, %d, %d) = %q, %v; want %q", tc.region, tc.w, tc.h, key, ok, tc.key)
		}
	}
	p.V2 = true
	if key, _ := p.Match(image.Rect(0, 0, 256, 256), 256, 256); key != "0,0,256,256/256,/0/default.jpg" {
		t.Errorf("v2 key %q", key)
	}
}

func TestCover(t *testing.T) {
	p, _ := Parse([]byte(dzsaveInfo))
	// Level 1/2 is 500×350: 2×2 tiles.
	s := p.Cover(2, image.Rect(100, 100, 300, 200))
	if s != (Span{SF: 2, Col0: 0, Row0: 0, Cols: 2, Rows: 1}) {
		t.Errorf("span %+v", s)
	}
	if r := p.Rect(s); r != image.Rect(0, 0, 500, 256) {
		t.Errorf("rect %v", r)
	}
	keys := p.Keys(s)
	if len(keys) != 2 || keys[1] != "512,0,488,512/244,256/0/default.jpg" {
		t.Errorf("keys %v", keys)
	}
	if s := p.Cover(1, image.Rect(999, 699, 1000, 700)); s != (Span{SF: 1, Col0: 3, Row0: 2, Cols: 1, Rows: 1}) {
		t.Errorf("corner span %+v", s)
	}
}
