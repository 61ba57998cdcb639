package iiif

import (
	"reflect"
	"testing"
)

func TestScaleFactors(t *testing.T) {
	tests := []struct {
		w, h, tw, th int
		want         []int
	}{
		{6000, 4000, 512, 512, []int{1, 2, 4, 8, 16}}, // 3.0 §5.4 example
		{512, 512, 512, 512, []int{1}},
		{513, 100, 512, 512, []int{1, 2}},
		{100, 5000, 256, 256, []int{1, 2, 4, 8, 16, 32}},
		{40000, 30000, 256, 256, []int{1, 2, 4, 8, 16, 32, 64, 128, 256}},
		{1, 1, 1, 1, []int{1}},
		{0, 1, 1, 1, nil},
		{1, 1, 0, 1, nil},
	}
	for _, tt := range tests {
		if got := ScaleFactors(tt.w, tt.h, tt.tw, tt.th); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ScaleFactors(%d, %d, %d, %d) = %v, want %v", tt.w, tt.h, tt.tw, tt.th, got, tt.want)
		}
	}
	// The largest factor reduces the image to one tile, the one before
	// does not.
	got := ScaleFactors(1<<40, 3, 1, 1)
	if s := got[len(got)-1]; s != 1<<40 {
		t.Errorf("largest factor %d", s)
	}
}

func TestSizesFor(t *testing.T) {
	got := SizesFor(6000, 4000, []int{1, 2, 4, 8, 16, 40}, 3000, 0, 0)
	want := []SizeEntry{{150, 100}, {375, 250}, {750, 500}, {1500, 1000}, {3000, 2000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// maxHeight defaults to maxWidth: a tall image loses its full size.
	got = SizesFor(1000, 3000, []int{1, 2, 4}, 1500, 0, 0)
	want = []SizeEntry{{250, 750}, {500, 1500}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Widths are ceil(w/s); heights are what "w," gives for that width.
	got = SizesFor(1001, 667, []int{4, 2, 2, 1}, 0, 0, 300000)
	want = []SizeEntry{{251, 167}, {501, 334}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, s := range got {
		if s.Height != AspectHeight(1001, 667, s.Width) {
			t.Errorf("%v is not a w, size", s)
		}
	}
}

func TestAspect(t *testing.T) {
	// 3.0 §4.2 example 6: a 300×200 image at 150 wide is 100 high.
	if h := AspectHeight(300, 200, 150); h != 100 {
		t.Errorf("AspectHeight = %d", h)
	}
	if w := AspectWidth(300, 200, 100); w != 150 {
		t.Errorf("AspectWidth = %d", w)
	}
	// Halves round up: 3×1 at width 1 is 1/3 → 0; 2×1 at 1 is 0.5 → 1.
	if AspectHeight(3, 1, 1) != 0 || AspectHeight(2, 1, 1) != 1 {
		t.Error("rounding")
	}
	if AspectHeight(1<<30, 1<<30, 1<<30) != 1<<30 {
		t.Error("overflow")
	}
}
