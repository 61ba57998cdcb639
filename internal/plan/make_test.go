package plan

import (
	"errors"
	"image"
	"math"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
)

// spec is the 300×200 image of the spec's examples.
var spec = Image{Width: 300, Height: 200}

// plan parses a "region/size/rotation/quality.format" path and plans it.
func plan(t testing.TB, v iiif.Version, path string, img Image, lim Limits) (Plan, error) {
	t.Helper()
	seg := strings.Split(path, "/")
	if len(seg) != 4 {
		t.Fatalf("bad test path %q", path)
	}
	req, err := iiif.ParseImage(v, seg[0], seg[1], seg[2], seg[3])
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return Make(req, img, lim)
}

func TestRegion(t *testing.T) {
	tests := []struct {
		path string
		img  Image
		want image.Rectangle
	}{
		// 3.0 §4.1 and 2.1 §4.1 examples on the 300×200 image.
		{"full/max/0/default.jpg", spec, image.Rect(0, 0, 300, 200)},
		{"square/max/0/default.jpg", spec, image.Rect(50, 0, 250, 200)},
		{"125,15,120,140/max/0/default.jpg", spec, image.Rect(125, 15, 245, 155)},
		{"pct:41.6,7.5,40,70/max/0/default.jpg", spec, image.Rect(125, 15, 245, 155)},
		// "N.B. Returned image is 175,185 px".
		{"125,15,200,200/max/0/default.jpg", spec, image.Rect(125, 15, 300, 200)},
		{"pct:41.6,7.5,66.6,100/max/0/default.jpg", spec, image.Rect(125, 15, 300, 200)},
		{"299,199,10,10/max/0/default.jpg", spec, image.Rect(299, 199, 300, 200)},
		{"0,0,999999999,999999999/max/0/default.jpg", spec, image.Rect(0, 0, 300, 200)},
		{"square/max/0/default.jpg", Image{Width: 200, Height: 301}, image.Rect(0, 50, 200, 250)},
		{"square/max/0/default.jpg", Image{Width: 7, Height: 7}, image.Rect(0, 0, 7, 7)},
		// Adjacent pct regions share edges exactly.
		{"pct:0,0,33.3333333333,100/max/0/default.jpg", Image{Width: 100, Height: 10}, image.Rect(0, 0, 33, 10)},
		{"pct:33.3333333333,0,33.3333333333,100/max/0/default.jpg", Image{Width: 100, Height: 10}, image.Rect(33, 0, 67, 10)},
		{"pct:66.6666666666,0,33.3333333334,100/max/0/default.jpg", Image{Width: 100, Height: 10}, image.Rect(67, 0, 100, 10)},
		// A tiny pct region inside the image keeps one pixel.
		{"pct:50,50,0.0001,0.0001/max/0/default.jpg", spec, image.Rect(150, 100, 151, 101)},
		{"pct:99.9,99.9,50,50/max/0/default.jpg", spec, image.Rect(299, 199, 300, 200)},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for _, v := range []iiif.Version{iiif.V2, iiif.V3} {
				path := tt.path
				if v == iiif.V2 {
					path = strings.Replace(path, "/max/", "/full/", 1)
				}
				p, err := plan(t, v, path, tt.img, Limits{})
				if err != nil {
					t.Fatalf("v%d: %v", v, err)
				}
				if p.Region != tt.want {
					t.Errorf("v%d: region %v, want %v", v, p.Region, tt.want)
				}
				if p.Width != tt.want.Dx() || p.Height != tt.want.Dy() {
					t.Errorf("v%d: size %dx%d, want the region's", v, p.Width, p.Height)
				}
			}
		})
	}
}

func TestRegionOutside(t *testing.T) {
	for _, path := range []string{
		"300,0,10,10/max/0/default.jpg",
		"0,200,10,10/max/0/default.jpg",
		"999999999,0,1,1/max/0/default.jpg",
		"pct:100,0,10,10/max/0/default.jpg",
		"pct:0,100,10,10/max/0/default.jpg",
		"pct:1000000000,0,1,1/max/0/default.jpg",
	} {
		_, err := plan(t, iiif.V3, path, spec, Limits{})
		wantErr(t, path, err, "region", 400, "outside")
	}
}

func TestSize3(t *testing.T) {
	tests := []struct {
		path string
		img  Image
		lim  Limits
		w, h int
	}{
		// 3.0 §4.2 examples on the 300×200 image.
		{"full/max/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/max/0/default.jpg", spec, Limits{MaxWidth: 200}, 200, 133},  // "Assuming ... maxWidth of 200px"
		{"full/^max/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 240}, // "Assuming ... maxWidth of 360px"
		{"full/150,/0/default.jpg", spec, Limits{}, 150, 100},
		{"full/^360,/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 240},
		{"full/,150/0/default.jpg", spec, Limits{}, 225, 150},
		{"full/^,240/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 240},
		{"full/pct:50/0/default.jpg", spec, Limits{}, 150, 100},
		{"full/^pct:120/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 240},
		{"full/225,100/0/default.jpg", spec, Limits{}, 225, 100},
		{"full/^360,360/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 360},
		{"full/!225,100/0/default.jpg", spec, Limits{}, 150, 100},               // "Returned image is 150,100 px"
		{"full/^!360,360/0/default.jpg", spec, Limits{MaxWidth: 360}, 360, 240}, // "Returned image is 360,240 px"
		// The §4.6 example: a 120×140 region at 90 wide.
		{"125,15,120,140/90,/!345/gray.jpg", spec, Limits{}, 90, 105},
		// !w,h never upscales: the 1000×1000 image at !2000,3000.
		{"full/!2000,3000/0/default.jpg", Image{Width: 1000, Height: 1000}, Limits{}, 1000, 1000},
		{"full/!2000,3000/0/default.jpg", Image{Width: 1000, Height: 1000}, Limits{MaxWidth: 5000}, 1000, 1000},
		{"full/^!2000,3000/0/default.jpg", Image{Width: 1000, Height: 1000}, Limits{MaxWidth: 5000}, 2000, 2000},
		{"full/!500,3000/0/default.jpg", Image{Width: 1000, Height: 1000}, Limits{}, 500, 500},
		// ^ that does not need to upscale needs no limits.
		{"full/^max/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/^150,/0/default.jpg", spec, Limits{}, 150, 100},
		{"full/^!100,100/0/default.jpg", spec, Limits{}, 100, 67},
		{"full/^pct:100/0/default.jpg", spec, Limits{}, 300, 200},
		// ^max is bounded by every limit; area alone scales both sides.
		{"full/^max/0/default.jpg", spec, Limits{MaxArea: 240000}, 600, 400},
		{"full/^max/0/default.jpg", spec, Limits{MaxWidth: 1000, MaxHeight: 300}, 450, 300},
		{"full/^max/0/default.jpg", spec, Limits{MaxWidth: 100}, 100, 67},
		// ±1 px: one pixel over the region is served at the region's size.
		{"full/301,/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/,201/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/301,201/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/301,100/0/default.jpg", spec, Limits{}, 300, 100},
		{"125,15,120,140/121,141/0/default.jpg", spec, Limits{}, 120, 140},
		// max and !w,h shrink to the limits instead of failing.
		{"full/max/0/default.jpg", Image{Width: 40000, Height: 30000}, Limits{MaxArea: 1_000_000}, 1154, 866},
		{"full/max/0/default.jpg", Image{Width: 40000, Height: 30000}, Limits{MaxWidth: 5000, MaxHeight: 2000}, 2667, 2000},
		{"full/!4000,4000/0/default.jpg", Image{Width: 40000, Height: 30000}, Limits{MaxWidth: 3000}, 3000, 2250},
		{"full/max/0/default.gif", Image{Width: 4000, Height: 3000}, Limits{PerFormat: map[iiif.Format]FormatLimits{iiif.FormatGIF: {MaxWidth: 800}}}, 800, 600},
		{"full/max/0/default.jpg", Image{Width: 4000, Height: 3000}, Limits{PerFormat: map[iiif.Format]FormatLimits{iiif.FormatGIF: {MaxWidth: 800}}}, 4000, 3000},
		// Extreme shapes still get at least one pixel per side.
		{"full/max/0/default.jpg", Image{Width: 1, Height: 100000}, Limits{MaxArea: 100}, 1, 100},
		{"full/max/0/default.jpg", Image{Width: 100000, Height: 1}, Limits{MaxWidth: 10}, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := plan(t, iiif.V3, tt.path, tt.img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if p.Width != tt.w || p.Height != tt.h {
				t.Errorf("size %dx%d, want %dx%d", p.Width, p.Height, tt.w, tt.h)
			}
		})
	}
}

func TestSize2(t *testing.T) {
	up := Limits{MaxWidth: 10000}
	tests := []struct {
		path string
		img  Image
		lim  Limits
		w, h int
	}{
		// 2.1 §4.2 examples on the 300×200 image.
		{"full/full/0/default.jpg", spec, Limits{}, 300, 200},
		{"full/max/0/default.jpg", spec, Limits{MaxWidth: 200}, 200, 133},
		{"full/150,/0/default.jpg", spec, Limits{}, 150, 100},
		{"full/,150/0/default.jpg", spec, Limits{}, 225, 150},
		{"full/pct:50/0/default.jpg", spec, Limits{}, 150, 100},
		{"full/225,100/0/default.jpg", spec, Limits{}, 225, 100},
		{"full/!225,100/0/default.jpg", spec, Limits{}, 150, 100},
		// Version 2 upscales without "^" where upscaling is served.
		{"full/600,/0/default.jpg", spec, up, 600, 400},
		{"full/,400/0/default.jpg", spec, up, 600, 400},
		{"full/pct:150/0/default.jpg", spec, up, 450, 300},
		{"full/600,600/0/default.jpg", spec, up, 600, 600},
		{"full/!600,600/0/default.jpg", spec, up, 600, 400},
		// !w,h without upscaling support stays at the region's size.
		{"full/!600,600/0/default.jpg", spec, Limits{}, 300, 200},
		// "full" over the limits shrinks like max.
		{"full/full/0/default.jpg", spec, Limits{MaxWidth: 200}, 200, 133},
		{"full/full/0/default.jpg", Image{Width: 40000, Height: 30000}, Limits{MaxArea: 1_000_000}, 1154, 866},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := plan(t, iiif.V2, tt.path, tt.img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if p.Width != tt.w || p.Height != tt.h {
				t.Errorf("size %dx%d, want %dx%d", p.Width, p.Height, tt.w, tt.h)
			}
		})
	}
}

func TestSizeErrors(t *testing.T) {
	big := Image{Width: 10000, Height: 10000}
	tall := Image{Width: 10000, Height: 20000}
	gif := Limits{MaxWidth: 5000, PerFormat: map[iiif.Format]FormatLimits{iiif.FormatGIF: {MaxWidth: 800, MaxArea: 100000}}}
	tests := []struct {
		v      iiif.Version
		path   string
		img    Image
		lim    Limits
		status int
		msg    string
	}{
		// 3.0 §4.2: above the region without ^ is 400 (beyond the 1 px
		// tolerance).
		{iiif.V3, "full/302,/0/default.jpg", spec, Limits{}, 400, "larger than the region"},
		{iiif.V3, "full/,202/0/default.jpg", spec, Limits{}, 400, "larger than the region"},
		{iiif.V3, "full/300,202/0/default.jpg", spec, Limits{}, 400, "height 202"},
		{iiif.V3, "125,15,120,140/122,/0/default.jpg", spec, Limits{}, 400, "width 122"},
		// Below 1 pixel: 400.
		{iiif.V3, "full/pct:0.01/0/default.jpg", spec, Limits{}, 400, "less than 1 pixel"},
		{iiif.V3, "full/,1/0/default.jpg", Image{Width: 1, Height: 1000}, Limits{}, 400, "less than 1 pixel"},
		{iiif.V2, "full/1,/0/default.jpg", Image{Width: 1000, Height: 1}, Limits{}, 400, "less than 1 pixel"},
		// Upscaling without a width or area limit: 501.
		{iiif.V3, "full/^360,/0/default.jpg", spec, Limits{}, 501, "upscaling"},
		{iiif.V3, "full/^pct:120/0/default.jpg", spec, Limits{}, 501, "upscaling"},
		{iiif.V3, "full/^!360,360/0/default.jpg", spec, Limits{}, 501, "upscaling"},
		{iiif.V3, "full/^300,201/0/default.jpg", spec, Limits{MaxHeight: 1000}, 501, "upscaling"},
		{iiif.V2, "full/600,/0/default.jpg", spec, Limits{}, 501, "upscaling"},
		{iiif.V2, "full/pct:150/0/default.jpg", spec, Limits{}, 501, "upscaling"},
		// Limits: 400 in version 3, 404 in version 2; the message names
		// the limit.
		{iiif.V3, "full/6000,/0/default.jpg", big, Limits{MaxWidth: 5000}, 400, "requested width 6000 exceeds maxWidth 5000"},
		{iiif.V3, "full/,6000/0/default.jpg", tall, Limits{MaxWidth: 5000}, 400, "requested height 6000 exceeds maxHeight 5000"},
		{iiif.V3, "full/,6000/0/default.jpg", tall, Limits{MaxWidth: 8000, MaxHeight: 5000}, 400, "requested height 6000 exceeds maxHeight 5000"},
		{iiif.V3, "full/3000,3000/0/default.jpg", big, Limits{MaxArea: 1_000_000}, 400, "requested area 9000000 exceeds maxArea 1000000"},
		{iiif.V3, "full/pct:60/0/default.jpg", big, Limits{MaxWidth: 5000}, 400, "requested width 6000 exceeds maxWidth 5000"},
		{iiif.V3, "full/^6000,/0/default.jpg", spec, Limits{MaxWidth: 5000}, 400, "requested width 6000 exceeds maxWidth 5000"},
		{iiif.V3, "full/^pct:1000000000/0/default.jpg", spec, Limits{MaxWidth: 5000}, 400, "exceeds maxWidth 5000"},
		{iiif.V3, "full/1000,/0/default.gif", big, gif, 400, "requested width 1000 exceeds maxWidth 800 for format gif"},
		{iiif.V3, "full/500,500/0/default.gif", big, gif, 400, "requested area 250000 exceeds maxArea 100000 for format gif"},
		{iiif.V3, "full/6000,/0/default.gif", big, gif, 400, "requested width 6000 exceeds maxWidth 800 for format gif"},
		{iiif.V2, "full/6000,/0/default.jpg", big, Limits{MaxWidth: 5000}, 404, "requested width 6000 exceeds maxWidth 5000"},
		{iiif.V2, "full/^max/0/default.jpg", spec, Limits{}, 0, ""}, // not reached: parse error
	}
	for _, tt := range tests {
		if tt.status == 0 {
			continue
		}
		t.Run(tt.path, func(t *testing.T) {
			_, err := plan(t, tt.v, tt.path, tt.img, tt.lim)
			wantErr(t, tt.path, err, "size", tt.status, tt.msg)
		})
	}
	// The same gif request is fine as a jpg.
	if _, err := plan(t, iiif.V3, "full/1000,/0/default.jpg", big, gif); err != nil {
		t.Errorf("jpg: %v", err)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		rot    string
		w, h   int // in: 300×200 at max
		ow, oh int
		deg    float64
		mirror bool
	}{
		// 3.0 §4.3 and 2.1 §4.3 examples.
		{"0", 300, 200, 300, 200, 0, false},
		{"180", 300, 200, 300, 200, 180, false},
		{"90", 300, 200, 200, 300, 90, false},
		{"270", 300, 200, 200, 300, 270, false},
		{"22.5", 300, 200, 354, 300, 22.5, false},
		{"!0", 300, 200, 300, 200, 0, true},
		{"!180", 300, 200, 300, 200, 180, true},
		{"360", 300, 200, 300, 200, 0, false},
		{"!360", 300, 200, 300, 200, 0, true},
		{"45", 300, 200, 354, 354, 45, false},
		{"135", 300, 200, 354, 354, 135, false},
		{"0.0000000001", 300, 200, 300, 200, 1e-10, false},
		{"359.9999999999", 300, 200, 300, 200, 359.9999999999, false},
	}
	for _, tt := range tests {
		p, err := plan(t, iiif.V3, "full/max/"+tt.rot+"/default.png", spec, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if p.OutWidth != tt.ow || p.OutHeight != tt.oh || p.Rotation != tt.deg || p.Mirror != tt.mirror {
			t.Errorf("%s: out %dx%d rot %v mirror %v, want %dx%d %v %v", tt.rot, p.OutWidth, p.OutHeight, p.Rotation, p.Mirror, tt.ow, tt.oh, tt.deg, tt.mirror)
		}
		if p.Width != tt.w || p.Height != tt.h {
			t.Errorf("%s: rotation changed the scaled size to %dx%d", tt.rot, p.Width, p.Height)
		}
	}
	// 22.5° of 300×200: |300cos|+|200sin| = 277.16+76.54, 200cos+300sin = 184.78+114.81.
	rad := 22.5 * math.Pi / 180
	if w := int(math.Round(300*math.Cos(rad) + 200*math.Sin(rad))); w != 354 {
		t.Errorf("formula check %d", w)
	}
}

// pyramid is a 40,000×30,000 image with halving levels, each
// ceil(previous/2), down to below 256 pixels.
func pyramid() Image {
	img := Image{Width: 40000, Height: 30000}
	w, h := img.Width, img.Height
	for {
		img.Levels = append(img.Levels, Level{Width: w, Height: h})
		if w < 256 && h < 256 {
			return img
		}
		w, h = (w+1)/2, (h+1)/2
	}
}

func TestLevel(t *testing.T) {
	pyr := pyramid()
	jpeg := Image{Width: 1001, Height: 1001, Levels: []Level{{Width: 1001, Height: 1001, Tiled: false}, {Width: 501, Height: 501, Tiled: false}, {Width: 251, Height: 251, Tiled: false}, {Width: 126, Height: 126, Tiled: false}}}
	tests := []struct {
		path        string
		img         Image
		lim         Limits
		level       int
		levelRegion image.Rectangle
		w, h        int
	}{
		// A 1024 thumbnail of the whole pyramid reads the 1250×938 level,
		// the smallest one still at least 1024×768.
		{"full/!1024,1024/0/default.jpg", pyr, Limits{}, 5, image.Rect(0, 0, 1250, 938), 1024, 768},
		{"full/1250,/0/default.jpg", pyr, Limits{}, 5, image.Rect(0, 0, 1250, 938), 1250, 938},
		{"full/1251,/0/default.jpg", pyr, Limits{}, 4, image.Rect(0, 0, 2500, 1875), 1251, 938},
		{"full/max/0/default.jpg", pyr, Limits{MaxArea: 1_000_000}, 5, image.Rect(0, 0, 1250, 938), 1154, 866},
		{"full/max/0/default.jpg", pyr, Limits{}, 0, image.Rect(0, 0, 40000, 30000), 40000, 30000},
		// A tile: 2000×2000 at 10000,10000 scaled to 500 reads level 2.
		{"10000,10000,2000,2000/500,/0/default.jpg", pyr, Limits{}, 2, image.Rect(2500, 2500, 3000, 3000), 500, 500},
		// The bottom-right edge tile of a tile grid at scale factor 64.
		{"32768,16384,7232,13616/113,213/0/default.jpg", pyr, Limits{}, 6, image.Rect(512, 256, 625, 469), 113, 213},
		// Upscaling reads the full level.
		{"0,0,100,100/^200,/0/default.jpg", pyr, Limits{MaxWidth: 1000}, 0, image.Rect(0, 0, 100, 100), 200, 200},
		// JPEG shrink-on-load levels are ceil(W/s): the level's own ratio
		// is used and the region is rounded outward.
		{"full/126,/0/default.jpg", jpeg, Limits{}, 3, image.Rect(0, 0, 126, 126), 126, 126},
		{"full/127,/0/default.jpg", jpeg, Limits{}, 2, image.Rect(0, 0, 251, 251), 127, 127},
		{"1000,1000,1,1/max/0/default.jpg", jpeg, Limits{}, 0, image.Rect(1000, 1000, 1001, 1001), 1, 1},
		// A 1-pixel region is not read from a level where it is half a
		// pixel.
		{"1000,1000,1,1/pct:50/0/default.jpg", jpeg, Limits{}, 0, image.Rect(1000, 1000, 1001, 1001), 1, 1},
		// Edge tiles of the JPEG's own tile grid at factor 8: ceil(201/8)
		// = 26 from 201·126/1001 = 25.3 pixels is too much of a shortfall,
		// ceil(1001/8) = 126 from the whole level is exact.
		{"800,800,201,201/26,26/0/default.jpg", jpeg, Limits{}, 2, image.Rect(200, 200, 251, 251), 26, 26},
		{"full/126,126/0/default.jpg", jpeg, Limits{}, 3, image.Rect(0, 0, 126, 126), 126, 126},
		{"1,1,999,999/125,/0/default.jpg", jpeg, Limits{}, 3, image.Rect(0, 0, 126, 126), 125, 125},
		// No levels: level 0, the region itself.
		{"10,10,20,20/10,/0/default.jpg", spec, Limits{}, 0, image.Rect(10, 10, 30, 30), 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := plan(t, iiif.V3, tt.path, tt.img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if p.Level != tt.level || p.LevelRegion != tt.levelRegion || p.Width != tt.w || p.Height != tt.h {
				t.Errorf("level %d %v size %dx%d, want %d %v %dx%d", p.Level, p.LevelRegion, p.Width, p.Height, tt.level, tt.levelRegion, tt.w, tt.h)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	lim := Limits{MaxWidth: 1000}
	tests := []struct {
		v    iiif.Version
		path string
		img  Image
		lim  Limits
		want string
	}{
		// 3.0 §4.8.
		{iiif.V3, "full/max/0/default.jpg", spec, Limits{}, "full/max/0/default.jpg"},
		{iiif.V3, "0,0,300,200/300,/0/default.jpg", spec, Limits{}, "full/max/0/default.jpg"},
		{iiif.V3, "pct:0,0,100,100/pct:100/360/default.jpg", spec, Limits{}, "full/max/0/default.jpg"},
		{iiif.V3, "0,0,999,999/301,201/0.0/default.jpg", spec, Limits{}, "full/max/0/default.jpg"},
		{iiif.V3, "full/^max/0/default.jpg", spec, Limits{}, "full/max/0/default.jpg"},
		{iiif.V3, "full/^300,/0/default.jpg", spec, lim, "full/max/0/default.jpg"},
		{iiif.V3, "full/max/0/default.jpg", spec, Limits{MaxWidth: 200}, "full/max/0/default.jpg"},
		{iiif.V3, "full/200,/0/default.jpg", spec, Limits{MaxWidth: 200}, "full/max/0/default.jpg"},
		{iiif.V3, "full/^max/0/default.jpg", spec, Limits{MaxWidth: 360}, "full/^max/0/default.jpg"},
		{iiif.V3, "full/^!360,360/0/default.jpg", spec, Limits{MaxWidth: 360}, "full/^max/0/default.jpg"},
		{iiif.V3, "full/^360,/0/default.jpg", spec, lim, "full/^360,240/0/default.jpg"},
		{iiif.V3, "full/^150,/0/default.jpg", spec, lim, "full/150,100/0/default.jpg"},
		{iiif.V3, "full/!225,100/0/default.jpg", spec, Limits{}, "full/150,100/0/default.jpg"},
		{iiif.V3, "full/pct:50/!90.50/color.png", spec, Limits{}, "full/150,100/!90.5/color.png"},
		{iiif.V3, "125,15,120,140/90,/!345/gray.jpg", spec, Limits{}, "125,15,120,140/90,105/!345/gray.jpg"},
		{iiif.V3, "pct:41.6,7.5,40,70/max/0/default.jpg", spec, Limits{}, "125,15,120,140/max/0/default.jpg"},
		{iiif.V3, "125,15,200,200/max/0/default.jpg", spec, Limits{}, "125,15,175,185/max/0/default.jpg"},
		{iiif.V3, "square/max/0/default.jpg", spec, Limits{}, "50,0,200,200/max/0/default.jpg"},
		{iiif.V3, "square/max/0/default.jpg", Image{Width: 200, Height: 200}, Limits{}, "full/max/0/default.jpg"},
		// 2.1 §4.7 and the 2.1.1 change log.
		{iiif.V2, "full/full/0/default.jpg", spec, Limits{}, "full/full/0/default.jpg"},
		{iiif.V2, "full/max/0/default.jpg", spec, Limits{}, "full/full/0/default.jpg"},
		{iiif.V2, "0,0,300,200/300,/360/default.jpg", spec, Limits{}, "full/full/0/default.jpg"},
		{iiif.V2, "full/max/0/default.jpg", spec, Limits{MaxWidth: 200}, "full/200,/0/default.jpg"},
		{iiif.V2, "full/full/0/default.jpg", spec, Limits{MaxWidth: 200}, "full/200,/0/default.jpg"},
		{iiif.V2, "full/,100/0/default.jpg", spec, Limits{}, "full/150,/0/default.jpg"},
		{iiif.V2, "full/!225,100/0/default.jpg", spec, Limits{}, "full/150,/0/default.jpg"},
		{iiif.V2, "full/pct:200/0/default.jpg", spec, lim, "full/600,/0/default.jpg"},
		{iiif.V2, "full/225,100/0/default.jpg", spec, Limits{}, "full/225,100/0/default.jpg"},
		{iiif.V2, "125,15,120,140/90,/!345/gray.jpg", spec, Limits{}, "125,15,120,140/90,/!345/gray.jpg"},
		{iiif.V2, "square/full/0/default.jpg", Image{Width: 200, Height: 200}, Limits{}, "full/full/0/default.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := plan(t, tt.v, tt.path, tt.img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Canonical.String(); got != tt.want {
				t.Errorf("canonical %q, want %q", got, tt.want)
			}
			q, err := plan(t, tt.v, p.Canonical.String(), tt.img, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if q != p {
				t.Errorf("canonical plans differently:\n%+v\n%+v", q, p)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	req := iiif.Request{Version: iiif.V3, Region: iiif.Region{Kind: iiif.RegionPercent, X: math.NaN(), W: 1, H: 1}, Quality: "default", Format: "jpg"}
	_, err := Make(req, spec, Limits{})
	var e *iiif.Error
	if !errors.As(err, &e) || e.HTTPStatus() != 400 || e.Part != "region" {
		t.Errorf("NaN region: %v", err)
	}
	req = iiif.Request{Version: iiif.V3, Size: iiif.Size{Kind: iiif.SizeWidth, W: -5}, Quality: "default", Format: "jpg"}
	if _, err := Make(req, spec, Limits{}); !errors.As(err, &e) || e.Part != "size" {
		t.Errorf("negative width: %v", err)
	}
	req = iiif.Request{Version: iiif.V3, Quality: "default", Format: "bmp"}
	if _, err := Make(req, spec, Limits{}); !errors.As(err, &e) || e.Part != "format" {
		t.Errorf("bmp: %v", err)
	}
	// Stray fields that String ignores are dropped, not refused.
	req = iiif.Request{Version: iiif.V3, Region: iiif.Region{X: 5}, Size: iiif.Size{W: 7}, Quality: "default", Format: "jpg"}
	if p, err := Make(req, spec, Limits{}); err != nil || p.Width != 300 {
		t.Errorf("stray fields: %v %+v", err, p)
	}

	full := iiif.Request{Version: iiif.V3, Quality: "default", Format: "jpg"}
	for name, img := range map[string]Image{
		"zero":            {},
		"huge":            {Width: MaxDim + 1, Height: 1},
		"level 0 differs": {Width: 10, Height: 10, Levels: []Level{{Width: 5, Height: 5, Tiled: false}}},
		"level too big":   {Width: 10, Height: 10, Levels: []Level{{Width: 10, Height: 10, Tiled: false}, {Width: 11, Height: 5, Tiled: false}}},
		"empty level":     {Width: 10, Height: 10, Levels: []Level{{Width: 10, Height: 10, Tiled: false}, {Width: 0, Height: 5, Tiled: false}}},
	} {
		_, err := Make(full, img, Limits{})
		wantErr(t, name, err, "image", 500, "")
	}
}

func wantErr(t *testing.T, name string, err error, part string, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error %T %v is not *Error", name, err, err)
		return
	}
	if e.Part != part || e.HTTPStatus() != status || !strings.Contains(e.Error(), msg) || !strings.HasPrefix(e.Error(), part+": ") {
		t.Errorf("%s: got %q (part %q, status %d), want part %q status %d containing %q", name, err, e.Part, e.HTTPStatus(), part, status, msg)
	}
}

// TestSourcePixelLimit: requests are refused from the header when the
// pixels they would have decoded exceed MaxSourcePixels.
func TestSourcePixelLimit(t *testing.T) {
	flat := Image{Width: 60000, Height: 60000} // a PNG bomb's header
	tiled := Image{Width: 100000, Height: 100000, Levels: []Level{{Width: 100000, Height: 100000, Tiled: true}}}
	pyr := pyramid()
	for i := range pyr.Levels {
		pyr.Levels[i].Tiled = true
	}
	jpeg := Image{Width: 40000, Height: 30000, Levels: []Level{{Width: 40000, Height: 30000}, {Width: 20000, Height: 15000}, {Width: 10000, Height: 7500}, {Width: 5000, Height: 3750}}}
	lim := Limits{MaxArea: 100_000_000, MaxSourcePixels: 1_000_000_000}
	tests := []struct {
		path string
		img  Image
		ok   bool
	}{
		{"full/256,/0/default.jpg", flat, false},
		// A strip of the top rows decodes only those rows.
		{"0,0,60000,100/6000,/0/default.jpg", flat, true},
		{"0,59900,60000,100/6000,/0/default.jpg", flat, false},
		// Tiles of a single-level tiled image decode only themselves; a
		// thumbnail of it would decode it all.
		{"50000,50000,512,512/512,/0/default.jpg", tiled, true},
		{"full/256,/0/default.jpg", tiled, false},
		// A pyramid serves everything from small levels.
		{"full/256,/0/default.jpg", pyr, true},
		{"full/max/0/default.jpg", pyr, true},
		// JPEG shrink-on-load levels: a thumbnail decodes at 1/8.
		{"full/1000,/0/default.jpg", jpeg, true},
		{"0,25000,1000,1000/max/0/default.jpg", jpeg, false},
		{"0,0,1000,1000/max/0/default.jpg", jpeg, true},
	}
	for _, tc := range tests {
		_, err := plan(t, iiif.V3, tc.path, tc.img, lim)
		if tc.ok && err != nil {
			t.Errorf("%s on %dx%d: %v", tc.path, tc.img.Width, tc.img.Height, err)
		}
		if !tc.ok {
			wantErr(t, tc.path, err, "image", 501, "maxSourcePixels")
		}
		// Without the limit everything plans.
		if _, err := plan(t, iiif.V3, tc.path, tc.img, Limits{MaxArea: lim.MaxArea}); err != nil {
			t.Errorf("%s without a source limit: %v", tc.path, err)
		}
	}
	for _, tc := range []struct {
		img  Image
		want int64
	}{
		{flat, 3_600_000_000},
		{tiled, 1},
		{pyr, 1},
		{jpeg, 5000 * 3750},
		{Image{Width: 7, Height: 3}, 21},
	} {
		if got := SmallestDecode(tc.img); got != tc.want {
			t.Errorf("SmallestDecode(%dx%d, %d levels) = %d, want %d", tc.img.Width, tc.img.Height, len(tc.img.Levels), got, tc.want)
		}
	}
}

func TestTighter(t *testing.T) {
	for _, tc := range []struct{ a, b, want int }{
		{0, 0, 0}, {0, 5, 5}, {5, 0, 5}, {3, 5, 3}, {5, 3, 3},
	} {
		if got := Tighter(tc.a, tc.b); got != tc.want {
			t.Errorf("Tighter(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := Tighter[int64](1<<40, 0); got != 1<<40 {
		t.Errorf("int64: %d", got)
	}
}

// TestWholeTiles: a decoder decodes whole tiles and whole strips, so a
// one-pixel region of an image stored as one huge tile (or one huge
// strip) costs the whole tile in source pixels and in memory. Such a file
// is a decompression bomb of a few kilobytes (issue 14 item 2).
func TestWholeTiles(t *testing.T) {
	oneTile := Image{Width: 8192, Height: 8192, Levels: []Level{{Width: 8192, Height: 8192, Tiled: true, TileWidth: 8192, TileHeight: 8192}}}
	oneStrip := Image{Width: 8192, Height: 8192, Levels: []Level{{Width: 8192, Height: 8192, RowsPerStrip: 8192}}}
	tiles := Image{Width: 8192, Height: 8192, Levels: []Level{{Width: 8192, Height: 8192, Tiled: true, TileWidth: 256, TileHeight: 256}}}
	// A JPEG 2000 codestream with 4096² tiles, and two reductions where
	// the tiles shrink with the level.
	jp2 := Image{Width: 8192, Height: 8192, Levels: []Level{
		{Width: 8192, Height: 8192, Tiled: true, TileWidth: 4096, TileHeight: 4096},
		{Width: 4096, Height: 4096, Tiled: true, TileWidth: 2048, TileHeight: 2048},
		{Width: 2048, Height: 2048, Tiled: true, TileWidth: 1024, TileHeight: 1024},
	}}
	lim := Limits{MaxSourcePixels: 10_000_000}
	for _, tc := range []struct {
		path   string
		img    Image
		decode int64 // 0: refused
	}{
		{"0,0,1,1/max/0/default.jpg", oneTile, 0},
		{"8000,8000,1,1/max/0/default.jpg", oneTile, 0},
		{"0,0,1,1/max/0/default.jpg", oneStrip, 0},
		{"0,0,1,1/max/0/default.jpg", tiles, 256 * 256},
		{"250,250,10,10/max/0/default.jpg", tiles, 4 * 256 * 256},
		{"8100,8100,92,92/max/0/default.jpg", tiles, 256 * 256},
		{"0,0,1,1/max/0/default.jpg", jp2, 0},
		{"full/1024,/0/default.jpg", jp2, 4 * 1024 * 1024},
		{"0,0,4096,4096/512,/0/default.jpg", jp2, 1024 * 1024},
	} {
		p, err := plan(t, iiif.V3, tc.path, tc.img, lim)
		if tc.decode == 0 {
			wantErr(t, tc.path, err, "image", 501, "maxSourcePixels")
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if p.Decoded != tc.decode {
			t.Errorf("%s: %d pixels decoded, want %d", tc.path, p.Decoded, tc.decode)
		}
	}
	// Without the source limit the plan still counts the whole tile, for
	// the memory a render reserves.
	p, err := plan(t, iiif.V3, "0,0,1,1/max/0/default.jpg", oneTile, Limits{})
	if err != nil || p.Decoded != 8192*8192 {
		t.Errorf("one tile without a limit: %d pixels, %v", p.Decoded, err)
	}
	p, err = plan(t, iiif.V3, "0,0,1,1/max/0/default.jpg", oneStrip, Limits{})
	if err != nil || p.Decoded != 8192*8192 {
		t.Errorf("one strip without a limit: %d pixels, %v", p.Decoded, err)
	}
	// The smallest thing that can be shown of a one-tile image is its tile.
	if got := SmallestDecode(oneTile); got != 8192*8192 {
		t.Errorf("SmallestDecode(one tile) = %d", got)
	}
	if got := SmallestDecode(tiles); got != 256*256 {
		t.Errorf("SmallestDecode(256² tiles) = %d", got)
	}
}

// TestRotatedLimits: every limit applies to the image as delivered, the
// bounding box after rotation (issue 14 item 3). Explicit sizes whose
// rotated box is over a limit are refused with a 400 that names it; "max"
// and "!w,h" shrink until the rotated box fits.
func TestRotatedLimits(t *testing.T) {
	webp := map[iiif.Format]FormatLimits{iiif.FormatWebP: {MaxWidth: 16383, MaxHeight: 16383}, iiif.FormatGIF: {MaxWidth: 500}}
	sq := Image{Width: 2000, Height: 2000}
	wide := Image{Width: 2000, Height: 1000}
	for _, tc := range []struct {
		path string
		img  Image
		lim  Limits
		msg  string // the refusal, or "" for a plan that fits
	}{
		{"full/max/45/default.png", sq, Limits{MaxArea: 1_000_000}, ""},
		{"full/max/0/default.png", sq, Limits{MaxArea: 1_000_000}, ""},
		{"full/1000,/45/default.png", sq, Limits{MaxArea: 1_000_000}, "maxArea 1000000"},
		{"full/max/30/default.png", sq, Limits{MaxWidth: 1000, MaxHeight: 1000}, ""},
		{"full/1000,/30/default.png", sq, Limits{MaxWidth: 1000, MaxHeight: 1000}, "maxWidth 1000"},
		{"full/!1000,1000/30/default.png", sq, Limits{MaxWidth: 1000, MaxHeight: 1000}, ""},
		{"full/max/90/default.png", wide, Limits{MaxWidth: 1000, MaxHeight: 500}, ""},
		{"full/1000,/90/default.png", wide, Limits{MaxWidth: 1000, MaxHeight: 500}, "maxHeight 500"},
		{"full/1000,/0/default.png", wide, Limits{MaxWidth: 1000, MaxHeight: 500}, ""},
		{"full/max/33/default.gif", sq, Limits{MaxWidth: 5000, PerFormat: webp}, ""},
		{"full/490,/33/default.gif", sq, Limits{MaxWidth: 5000, PerFormat: webp}, "maxWidth 500 for format gif"},
		{"0,0,1200,146/^16383,/10/default.webp", sq, Limits{MaxWidth: 20000, PerFormat: webp}, "for format webp"},
		{"0,0,1200,146/^max/10/default.webp", sq, Limits{MaxWidth: 20000, PerFormat: webp}, ""},
		{"full/^max/45/default.png", Image{Width: 10, Height: 10}, Limits{MaxWidth: 100, MaxArea: 5000}, ""},
	} {
		p, err := plan(t, iiif.V3, tc.path, tc.img, tc.lim)
		if tc.msg != "" {
			wantErr(t, tc.path, err, "size", 400, tc.msg)
			if err != nil && !strings.Contains(err.Error(), "rotat") && !strings.Contains(tc.path, "/0/") {
				t.Errorf("%s: %q does not say the rotation counts", tc.path, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		b := tc.lim.bounds(p.Format)
		if int64(p.OutWidth) > b.w.v || int64(p.OutHeight) > b.h.v || int64(p.OutWidth)*int64(p.OutHeight) > b.area.v {
			t.Errorf("%s: output %dx%d over the limits", tc.path, p.OutWidth, p.OutHeight)
		}
		// max shrinks no more than it must: one pixel more would not fit.
		if strings.Contains(tc.path, "max") {
			ow, oh := rotatedSize(p.Width+1, iiif.AspectHeight(p.Region.Dx(), p.Region.Dy(), p.Width+1), p.Rotation)
			if int64(ow) <= b.w.v && int64(oh) <= b.h.v && int64(ow)*int64(oh) <= b.area.v && p.Width < p.Region.Dx() && !strings.Contains(tc.path, "^") {
				t.Errorf("%s: %dx%d (out %dx%d) could have been %d wide", tc.path, p.Width, p.Height, p.OutWidth, p.OutHeight, p.Width+1)
			}
		}
	}
}
