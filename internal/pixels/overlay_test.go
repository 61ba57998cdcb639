package pixels

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
)

// TestOverlay composites a red square over a white image at several
// opacities, qualities and formats: the square lands where it is put,
// blends by its opacity, is cut at the edges, and the output keeps its
// bands (grey stays grey).
func TestOverlay(t *testing.T) {
	white := image.NewNRGBA(image.Rect(0, 0, 200, 100))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	path := writeFile(t, "white.png", encodePNG(t, white))
	red := image.NewNRGBA(image.Rect(0, 0, 20, 20))
	for y := range 20 {
		for x := range 20 {
			red.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
		}
	}
	mark := encodePNG(t, red)
	tests := []struct {
		name    string
		opacity float64
		q       iiif.Quality
		f       iiif.Format
		x, y    int
		inside  color.NRGBA // at x+10, y+10 (clipped to the image)
	}{
		{"opaque png", 1, "", iiif.FormatPNG, 10, 10, color.NRGBA{255, 0, 0, 255}},
		{"half jpg", 0.5, "", iiif.FormatJPG, 50, 30, color.NRGBA{255, 128, 128, 255}},
		{"gray", 1, iiif.QualityGray, iiif.FormatPNG, 10, 10, color.NRGBA{124, 124, 124, 255}}, // libvips' grey of red,
		{"cut at the corner", 1, "", iiif.FormatPNG, 190, 90, color.NRGBA{255, 0, 0, 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mkPlan(white.Bounds(), 200, 100, 0, false, tt.q, tt.f)
			var buf bytes.Buffer
			in := engine.Input{Path: path, Level: full, Overlay: &engine.Overlay{PNG: mark, X: tt.x, Y: tt.y, Opacity: tt.opacity}}
			if err := Render(context.Background(), in, p, engine.EncodeOptions{}, &buf); err != nil {
				t.Fatal(detail(err))
			}
			img := decode(t, tt.f, buf.Bytes())
			if img.Bounds().Dx() != 200 || img.Bounds().Dy() != 100 {
				t.Fatalf("size %v", img.Bounds())
			}
			cx, cy := min(tt.x+5, 199), min(tt.y+5, 99)
			if m := meanColour(img, image.Rect(cx, cy, cx+1, cy+1)); !near(m, tt.inside, 12) {
				t.Errorf("inside the overlay: %v, want %v", m, tt.inside)
			}
			if m := meanColour(img, image.Rect(0, 50, 5, 55)); !near(m, color.NRGBA{255, 255, 255, 255}, 4) {
				t.Errorf("outside the overlay: %v, want white", m)
			}
			if tt.q == iiif.QualityGray {
				if _, ok := img.(*image.Gray); !ok {
					t.Errorf("gray output decoded as %T", img)
				}
			}
		})
	}
	// A broken overlay fails the render with a fault.
	p := mkPlan(white.Bounds(), 200, 100, 0, false, "", iiif.FormatPNG)
	err := Render(context.Background(), engine.Input{Path: path, Level: full, Overlay: &engine.Overlay{PNG: []byte("nope"), Opacity: 1}}, p, engine.EncodeOptions{}, &bytes.Buffer{})
	if err == nil {
		t.Error("a broken overlay rendered")
	}
}
