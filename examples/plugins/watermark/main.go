//go:build wasip1

// Command watermark is an iiifd plugin that stamps a watermark on images
// larger than watermark.min-size pixels (default 400) on their longer
// side: a square of diagonal stripes in the bottom-right corner, a
// quarter of the shorter side wide, at watermark.opacity (default 0.5).
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strconv"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var (
	minSize = 400
	opacity = 0.5
	marks   = map[int][]byte{} // PNG by side length
)

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
	side := max(min(w, h)/4, 8)
	b, ok := marks[side]
	if !ok {
		b = mark(side)
		if len(marks) > 64 {
			clear(marks)
		}
		marks[side] = b
	}
	margin := side / 8
	return &iiifdplugin.Image{PNG: b, X: w - side - margin, Y: h - side - margin, Opacity: opacity}
}

// mark draws the watermark: white and black diagonal stripes.
func mark(side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	stripe := max(side/8, 1)
	for y := range side {
		for x := range side {
			c := color.NRGBA{255, 255, 255, 255}
			if ((x+y)/stripe)%2 == 1 {
				c = color.NRGBA{0, 0, 0, 255}
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
