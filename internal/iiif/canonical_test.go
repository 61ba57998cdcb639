package iiif

import "testing"

func TestCanonical(t *testing.T) {
	// A 300×200 image, the spec's example image.
	whole := Geometry{WholeImage: true, W: 300, H: 200, Quality: "default", Format: "jpg"}
	tests := []struct {
		name string
		v    Version
		g    Geometry
		want string
	}{
		{"v3 max", V3, with(whole, 300, 200, true, false), "full/max/0/default.jpg"},
		{"v3 max under a limit", V3, with(whole, 200, 133, true, false), "full/max/0/default.jpg"},
		{"v3 w,h", V3, with(whole, 150, 100, false, false), "full/150,100/0/default.jpg"},
		{"v3 distorted", V3, with(whole, 225, 100, false, false), "full/225,100/0/default.jpg"},
		{"v3 ^w,h", V3, with(whole, 360, 240, false, false), "full/^360,240/0/default.jpg"},
		{"v3 ^w,h one side", V3, with(whole, 300, 201, false, false), "full/^300,201/0/default.jpg"},
		{"v3 ^max", V3, with(whole, 360, 240, false, true), "full/^max/0/default.jpg"},
		// ^max that does not upscale is max.
		{"v3 ^max equal to max", V3, with(whole, 300, 200, true, true), "full/max/0/default.jpg"},
		{"v3 region", V3, Geometry{X: 125, Y: 15, W: 120, H: 140, Width: 90, Height: 105, Quality: "gray", Format: "jpg", Degrees: 345, Mirror: true}, "125,15,120,140/90,105/!345/gray.jpg"},
		{"v3 float rotation", V3, Geometry{WholeImage: true, W: 300, H: 200, Width: 300, Height: 200, IsMax: true, Degrees: 22.5, Quality: "color", Format: "png"}, "full/max/22.5/color.png"},

		{"v2 full", V2, with(whole, 300, 200, true, false), "full/full/0/default.jpg"},
		// 2.1.1: max below full is written "w,".
		{"v2 max under a limit", V2, with(whole, 150, 100, true, false), "full/150,/0/default.jpg"},
		{"v2 w,", V2, with(whole, 150, 100, false, false), "full/150,/0/default.jpg"},
		{"v2 upscaled w,", V2, with(whole, 600, 400, false, false), "full/600,/0/default.jpg"},
		{"v2 distorted", V2, with(whole, 225, 100, false, false), "full/225,100/0/default.jpg"},
		{"v2 region", V2, Geometry{X: 125, Y: 15, W: 120, H: 140, Width: 90, Height: 105, Quality: "gray", Format: "jpg", Degrees: 345, Mirror: true}, "125,15,120,140/90,/!345/gray.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Canonical(tt.v, tt.g)
			if got := r.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			back, err := split(t, tt.v, r.String())
			if err != nil {
				t.Fatal(err)
			}
			if back != r {
				t.Errorf("does not round-trip: %+v vs %+v", back, r)
			}
		})
	}
}

func with(g Geometry, w, h int, isMax, isUpMax bool) Geometry {
	g.Width, g.Height, g.IsMax, g.IsUpMax = w, h, isMax, isUpMax
	return g
}
