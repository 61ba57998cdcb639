//go:build wasip1

// Command announce is an iiifd plugin for tests: its overlay writes the
// line "overlay WIDTHxHEIGHT" to its standard output before it answers
// with a small black square in the top-left corner, and its info hook
// writes "info ID" and adds nothing. The host logs a guest's output
// while the call runs, so a test whose logger holds that line holds the
// call there, and can reload plugins while it runs.
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var square []byte

func init() {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	var buf bytes.Buffer
	png.Encode(&buf, img)
	square = buf.Bytes()
}

//go:wasmexport overlay
func overlay(ptr, size uint32) uint64 {
	return iiifdplugin.Overlay(ptr, size, func(req iiifdplugin.Fields) *iiifdplugin.Image {
		fmt.Printf("overlay %dx%d\n", req.Int("width"), req.Int("height"))
		return &iiifdplugin.Image{PNG: square, Opacity: 1}
	})
}

//go:wasmexport info
func info(ptr, size uint32) uint64 {
	return iiifdplugin.Info(ptr, size, func(req iiifdplugin.Fields) []byte {
		fmt.Printf("info %s\n", req.Get("id"))
		return nil
	})
}

func main() {}
