// Package goenginetest makes the pictures the pure-Go engine's tests and
// its WebAssembly benchmark (wasmbench) render: one generator, so that
// both measure the same kind of input.
package goenginetest

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sync"
)

var (
	mu    sync.Mutex
	tiles = map[image.Point][]byte{}
)

// PhotoTile is a JPEG (quality 85) of w×h pixels of smooth colour with
// noise, which compresses as photographs do (some 100 KB at 512×512).
// Tiles are made once per size.
func PhotoTile(w, h int) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := tiles[image.Pt(w, h)]; ok {
		return b, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := img.PixOffset(x, y)
			n := rng.IntN(48)
			img.Pix[o] = uint8(100 + 80*math.Sin(float64(x)/37) + float64(n))
			img.Pix[o+1] = uint8(100 + 80*math.Cos(float64(y)/23) + float64(n))
			img.Pix[o+2] = uint8((x*y)/97%200 + n)
			img.Pix[o+3] = 255
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	tiles[image.Pt(w, h)] = b.Bytes()
	return b.Bytes(), nil
}
