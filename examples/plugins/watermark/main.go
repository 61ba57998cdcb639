//go:build wasip1

// Command watermark is an iiifd plugin that stamps a watermark on images
// larger than watermark.min-size pixels (default 400) on their longer
// side: a square of diagonal stripes in the bottom-right corner, a
// quarter of the shorter side wide, at watermark.opacity (default 0.5).
//
// With watermark.per-user=COOKIE the stripes get a colour of their own
// for each value of that cookie (a per-user watermark), and requests
// without it get none: the plugin declares that its overlay depends on
// the cookie (iiifdplugin.OverlayVary), so iiifd gives it the cookie and
// never serves one user's stamped image to another.
package main

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"strconv"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var (
	minSize = 400
	opacity = 0.5
	perUser string                 // the cookie naming the user, if any
	marks   = map[markKey][]byte{} // PNGs drawn
)

type markKey struct {
	side int
	ink  color.NRGBA
}

func init() {
	iiifdplugin.Configure(func(cfg iiifdplugin.Fields) error {
		if s := cfg.Get("min-size"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return fmt.Errorf("min-size %q is not a pixel count", s)
			}
			minSize = n
		}
		if s := cfg.Get("opacity"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 || v > 1 {
				return fmt.Errorf("opacity %q is not in 0..1", s)
			}
			opacity = v
		}
		if perUser = cfg.Get("per-user"); perUser != "" {
			iiifdplugin.OverlayVary("cookie:" + perUser)
		}
		return nil
	})
}

//go:wasmexport overlay
func overlay(ptr, size uint32) uint64 { return iiifdplugin.Overlay(ptr, size, stamp) }

func stamp(req iiifdplugin.Fields) *iiifdplugin.Image {
	w, h := req.Int("width"), req.Int("height")
	if max(w, h) <= minSize {
		return nil
	}
	ink := color.NRGBA{0, 0, 0, 255}
	if perUser != "" {
		user := req.Cookie(perUser)
		if user == "" {
			return nil
		}
		sum := fnv.New32a()
		sum.Write([]byte(user))
		v := sum.Sum32()
		ink = color.NRGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), 255}
	}
	side := max(min(w, h)/4, 8)
	k := markKey{side, ink}
	b, ok := marks[k]
	if !ok {
		b = mark(side, ink)
		if len(marks) > 64 {
			clear(marks)
		}
		marks[k] = b
	}
	margin := side / 8
	return &iiifdplugin.Image{PNG: b, X: w - side - margin, Y: h - side - margin, Opacity: opacity}
}

// mark draws the watermark: white diagonal stripes and stripes of ink.
func mark(side int, ink color.NRGBA) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	stripe := max(side/8, 1)
	for y := range side {
		for x := range side {
			c := color.NRGBA{255, 255, 255, 255}
			if ((x+y)/stripe)%2 == 1 {
				c = ink
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	enc.Encode(&buf, img)
	return buf.Bytes()
}

func main() {}
