//go:build ignore

// gen renders the embedded sample images. It is run by hand (go generate
// in internal/samples) and needs the vips command-line tool; its output is
// committed, so builds do not need it.
package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

func main() {
	out := "images"
	tmp, err := os.MkdirTemp("", "iiifd-gen-")
	check(err)
	defer os.RemoveAll(tmp)

	// A deep-zoom subject: the Mandelbrot set, as a tiled pyramidal TIFF.
	ppm := filepath.Join(tmp, "m.ppm")
	writePPM(ppm, fractal(6144, 4608, mandelbrot))
	vips("tiffsave", ppm, filepath.Join(out, "mandelbrot.tif"), "--tile", "--pyramid",
		"--compression", "jpeg", "--Q", "80", "--tile-width", "256", "--tile-height", "256")

	// A flat JPEG photo-like subject: a Julia set.
	f, err := os.Create(filepath.Join(out, "julia.jpg"))
	check(err)
	check(jpeg.Encode(f, fractal(2400, 1600, julia), &jpeg.Options{Quality: 88}))
	check(f.Close())

	// An orientation chart: coloured quadrants, a grid and an asymmetric
	// "F" marker, with an alpha gradient on the right edge.
	f, err = os.Create(filepath.Join(out, "testchart.png"))
	check(err)
	check(png.Encode(f, chart(1200, 800)))
	check(f.Close())

	// JPEG 2000 with tiles and resolution levels: a zone plate.
	zone := filepath.Join(tmp, "z.v")
	vips("zone", zone, "1024", "1024")
	scaled := filepath.Join(tmp, "zs.v")
	vips("linear", zone, scaled, "127.5", "127.5", "--uchar")
	vips("jp2ksave", scaled, filepath.Join(out, "zoneplate.jp2"), "--tile-width", "256", "--tile-height", "256", "--Q", "40")
}

func vips(args ...string) {
	cmd := exec.Command("vips", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(cmd.Run())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type escape func(x, y float64) float64

// fractal renders w×h pixels of f over the complex plane, in parallel rows.
func fractal(w, h int, f func(px, py, w, h int) color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var wg sync.WaitGroup
	rows := make(chan int, h)
	for y := 0; y < h; y++ {
		rows <- y
	}
	close(rows)
	for i := 0; i < runtime.NumCPU(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for y := range rows {
				for x := 0; x < w; x++ {
					img.SetRGBA(x, y, f(x, y, w, h))
				}
			}
		}()
	}
	wg.Wait()
	return img
}

func palette(t float64) color.RGBA {
	if t < 0 {
		return color.RGBA{8, 10, 30, 255}
	}
	r := 0.5 + 0.5*math.Cos(2*math.Pi*(t+0.00))
	g := 0.5 + 0.5*math.Cos(2*math.Pi*(t+0.15))
	b := 0.5 + 0.5*math.Cos(2*math.Pi*(t+0.30))
	return color.RGBA{uint8(255 * r), uint8(255 * g), uint8(255 * b), 255}
}

func smooth(zr, zi float64, n, max int) float64 {
	if n >= max {
		return -1
	}
	mod := math.Sqrt(zr*zr + zi*zi)
	return (float64(n) + 1 - math.Log2(math.Log(mod))) / 64
}

func mandelbrot(px, py, w, h int) color.RGBA {
	cx := -0.75 + (float64(px)/float64(w)-0.5)*3.2
	cy := (float64(py)/float64(h) - 0.5) * 2.4
	zr, zi := 0.0, 0.0
	const max = 400
	n := 0
	for ; n < max && zr*zr+zi*zi < 256; n++ {
		zr, zi = zr*zr-zi*zi+cx, 2*zr*zi+cy
	}
	return palette(smooth(zr, zi, n, max))
}

func julia(px, py, w, h int) color.RGBA {
	zr := (float64(px)/float64(w) - 0.5) * 3.3
	zi := (float64(py)/float64(h) - 0.5) * 2.2
	const cr, ci, max = -0.8, 0.156, 300
	n := 0
	for ; n < max && zr*zr+zi*zi < 256; n++ {
		zr, zi = zr*zr-zi*zi+cr, 2*zr*zi+ci
	}
	return palette(smooth(zr, zi, n, max) + 0.5)
}

func chart(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	quad := [4]color.NRGBA{{220, 40, 40, 255}, {40, 170, 60, 255}, {40, 80, 210, 255}, {235, 200, 40, 255}}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := 0
			if x >= w/2 {
				q++
			}
			if y >= h/2 {
				q += 2
			}
			c := quad[q]
			if x%100 == 0 || y%100 == 0 {
				c = color.NRGBA{255, 255, 255, 255}
			}
			if x > w-100 { // alpha ramp on the right edge
				c.A = uint8(255 * (w - x) / 100)
			}
			img.SetNRGBA(x, y, c)
		}
	}
	// The "F" marker: a stem and two bars, near the top-left corner.
	black := color.NRGBA{0, 0, 0, 255}
	fill := func(x0, y0, x1, y1 int) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetNRGBA(x, y, black)
			}
		}
	}
	fill(150, 120, 190, 360)
	fill(150, 120, 310, 160)
	fill(150, 220, 270, 260)
	return img
}

func writePPM(path string, img *image.RGBA) {
	f, err := os.Create(path)
	check(err)
	bw := bufio.NewWriterSize(f, 1<<20)
	b := img.Bounds()
	fmt.Fprintf(bw, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			i := img.PixOffset(x, y)
			bw.Write(img.Pix[i : i+3])
		}
	}
	check(bw.Flush())
	check(f.Close())
}
