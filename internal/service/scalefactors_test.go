package service

import (
	"bytes"
	"testing"

	"github.com/iiifd/iiifd/internal/probe"
)

func TestScaleFactors(t *testing.T) {
	tiled := func(w, h int) probe.Level { return probe.Level{Width: w, Height: h, TileWidth: 256, TileHeight: 256} }
	for _, tc := range []struct {
		levels []probe.Level
		want   string
	}{
		// Stored halvings, then doublings down to one tile.
		{[]probe.Level{tiled(6144, 4608), tiled(3072, 2304), tiled(1536, 1152)}, "[1 2 4 8 16 32]"},
		// Rounded either way; any whole factor.
		{[]probe.Level{tiled(3000, 3000), tiled(1000, 1000)}, "[1 3 6 12]"},
		{[]probe.Level{tiled(1001, 701), tiled(500, 350), tiled(251, 176)}, "[1 2 4]"},
		// A level tiled differently, or not a whole scale, is skipped.
		{[]probe.Level{tiled(4000, 4000), {Width: 2000, Height: 2000, TileWidth: 128, TileHeight: 128}, tiled(1300, 1300), tiled(1000, 1000)}, "[1 4 8 16]"},
		// Not a tiled pyramid: the caller's powers of two.
		{[]probe.Level{tiled(4000, 4000)}, "[]"},
		{[]probe.Level{{Width: 4000, Height: 3000}, {Width: 2000, Height: 1500}}, "[]"},
	} {
		h := header{info: probe.Info{Width: tc.levels[0].Width, Height: tc.levels[0].Height, Levels: tc.levels}}
		if got := fmtInts(scaleFactors(h)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.levels, got, tc.want)
		}
	}
}

func fmtInts(s []int) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(itoa(v))
	}
	b.WriteByte(']')
	return b.String()
}

func itoa(v int) string {
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}
