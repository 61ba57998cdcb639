package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/samples"
)

// corpusW and corpusH are the size of every corpus image: small, so that
// the whole corpus is made and served in seconds, and not square, so
// that swapped sides show.
const corpusW, corpusH = 240, 160

// knownCorpusFailures lists the flavours the server does not serve right
// yet, each with the reason: the corpus test logs them instead of failing,
// and fails when one of them starts to pass (so the list stays true).
// README's "Source flavours" section repeats it.
var knownCorpusFailures = map[string]string{}

// flavour is one corpus image: its file name (its identifier), how it is
// made in dir from the reference, and what it must look like in 8-bit
// sRGB.
type flavour struct {
	name  string
	make  func(t *testing.T, path string)
	want  image.Image
	alpha bool // served as PNG everywhere, so that the alpha survives
	// stored says the source holds JPEG tiles that an aligned tile
	// request passes through: that tile is asked for as JPEG (other
	// flavours' tiles as PNG, so that no encoding loss is scored).
	stored bool
}

// corpusReference is the project's test chart (internal/samples), scaled
// to the corpus size, with the orientation markers of markerImage: a red
// block at the top left, green at the top right, blue at the bottom left.
func corpusReference(t *testing.T, dir string) *image.RGBA {
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	scaled := filepath.Join(dir, "chart.png")
	run(t, "vips", "thumbnail", filepath.Join(dir, "testchart.png"), scaled, fmt.Sprint(corpusW),
		"--height", fmt.Sprint(corpusH), "--size", "force")
	img := readPNG(t, scaled)
	ref := image.NewRGBA(image.Rect(0, 0, corpusW, corpusH))
	draw.Draw(ref, ref.Bounds(), img, img.Bounds().Min, draw.Src)
	mark := markerImage(corpusW, corpusH)
	for y := range corpusH {
		for x := range corpusW {
			if x < corpusW/4 && y < corpusH/4 || x >= 3*corpusW/4 && y < corpusH/4 || x < corpusW/4 && y >= 3*corpusH/4 {
				ref.SetRGBA(x, y, mark.RGBAAt(x, y))
			}
		}
	}
	return ref
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func writePNG(t *testing.T, path string, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePPM writes img as a binary PPM, the input of cjpeg.
func writePPM(t *testing.T, path string, img *image.RGBA) string {
	t.Helper()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "P6\n%d %d\n255\n", img.Bounds().Dx(), img.Bounds().Dy())
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			c := img.RGBAAt(x, y)
			buf.Write([]byte{c.R, c.G, c.B})
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// posterized is img with each channel on six levels: at most 216 colours,
// which palette formats (GIF, palette PNG and TIFF) hold exactly.
func posterized(img *image.RGBA) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
		} else {
			out.Pix[i] = uint8((int(v) + 25) / 51 * 51)
		}
	}
	return out
}

// grey is img in Go's grey (the stored pixels of the grey flavours),
// as RGBA; bitonal is it thresholded at the middle.
func grey(img *image.RGBA, bitonal bool) (*image.Gray, *image.RGBA) {
	g := image.NewGray(img.Bounds())
	rgba := image.NewRGBA(img.Bounds())
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			v := color.GrayModel.Convert(img.RGBAAt(x, y)).(color.Gray).Y
			if bitonal {
				v = map[bool]uint8{true: 255, false: 0}[v >= 128]
			}
			g.SetGray(x, y, color.Gray{v})
			rgba.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	return g, rgba
}

// withHole is img with a transparent 32x32 square in its middle, in
// premultiplied RGBA as image/png decodes it.
func withHole(img *image.RGBA) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	copy(out.Pix, img.Pix)
	for y := corpusH/2 - 16; y < corpusH/2+16; y++ {
		for x := corpusW/2 - 16; x < corpusW/2+16; x++ {
			out.SetRGBA(x, y, color.RGBA{})
		}
	}
	return out
}

// corpusFlavours makes the list of corpus images, with the intermediate
// files their generators share written to work.
func corpusFlavours(t *testing.T, work string, ref *image.RGBA) []flavour {
	refPNG := writePNG(t, filepath.Join(work, "ref.png"), ref)
	refPPM := writePPM(t, filepath.Join(work, "ref.ppm"), ref)
	post := posterized(ref)
	postPNG := writePNG(t, filepath.Join(work, "post.png"), post)
	grayImg, grayRGBA := grey(ref, false)
	grayPNG := writePNG(t, filepath.Join(work, "gray.png"), grayImg)
	bitImg, bitRGBA := grey(ref, true)
	bitPNG := writePNG(t, filepath.Join(work, "bitonal.png"), bitImg)
	holed := withHole(ref)
	holedPNG := writePNG(t, filepath.Join(work, "alpha.png"), holed)
	rgb16 := filepath.Join(work, "rgb16.v")
	run(t, "vips", "colourspace", refPNG, rgb16, "rgb16")
	grey16 := filepath.Join(work, "grey16.v")
	run(t, "vips", "colourspace", grayPNG, grey16, "grey16")
	adobe := filepath.Join(work, "adobe.v")
	run(t, "vips", "icc_transform", refPNG, adobe, adobeRGBProfile, "--input-profile", "srgb")
	cmyk := filepath.Join(work, "cmyk.v")
	run(t, "vips", "colourspace", refPNG, cmyk, "cmyk")
	// CMYK's gamut is not sRGB's, and a palette holds what its maker
	// chose: these flavours are expected to look as an independent
	// colour-managed decoder shows the file made (libvips' CLI with the
	// file's own profile; libtiff's tiff2rgba for the palette TIFF).
	// prebuilt runs a command whose argument "OUT" is the file made.
	prebuilt := func(name string, args ...string) string {
		path := filepath.Join(work, name)
		a := append([]string{}, args[1:]...)
		for i := range a {
			if a[i] == "OUT" {
				a[i] = path
			}
		}
		run(t, args[0], a...)
		return path
	}
	viewed := func(path string) image.Image {
		out := path + ".viewed.png"
		run(t, "vips", "icc_transform", path, out, "srgb", "--embedded", "--input-profile", "cmyk")
		return readPNG(t, out)
	}
	cmykTIFF := prebuilt("cmyk.tif", "vips", "tiffsave", cmyk, "OUT", "--compression", "lzw")
	cmykJPEG := prebuilt("cmyk.jpg", "vips", "jpegsave", cmyk, "OUT", "--Q", "95")
	postTIFF := prebuilt("post.tif", "vips", "tiffsave", postPNG, "OUT")
	palTIFF := prebuilt("palette.tif", "tiffmedian", "-c", "lzw", postTIFF, "OUT")
	palRGBA := prebuilt("palette-rgba.tif", "tiff2rgba", palTIFF, "OUT")
	palWant := readPNG(t, prebuilt("palette-rgba.png", "vips", "extract_band", palRGBA, "OUT", "0", "--n", "3"))
	copyOf := func(src string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, b, 0o644)
		}
	}

	vips := func(args ...string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			a := append([]string{}, args...)
			a = append(a[:2:2], append([]string{path}, a[2:]...)...)
			run(t, "vips", a...)
		}
	}
	tiffFrom := func(src string, opts ...string) func(t *testing.T, path string) {
		return vips(append([]string{"tiffsave", src}, opts...)...)
	}
	cjpeg := func(opts ...string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			run(t, "cjpeg", append(append([]string{"-quality", "95"}, opts...), "-outfile", path, refPPM)...)
		}
	}
	tile := []string{"--tile", "--tile-width", "64", "--tile-height", "64"}

	var fl []flavour
	for _, layout := range []string{"strip", "tiled"} {
		for _, comp := range []string{"none", "lzw", "deflate", "jpeg", "packbits"} {
			opts := []string{"--compression", comp, "--Q", "95"}
			if layout == "tiled" {
				opts = append(opts, tile...)
			}
			fl = append(fl, flavour{name: fmt.Sprintf("tiff-%s-%s.tif", layout, comp), make: tiffFrom(refPNG, opts...), want: ref,
				stored: layout == "tiled" && comp == "jpeg"})
		}
	}
	fl = append(fl,
		flavour{name: "tiff-16bit.tif", make: tiffFrom(rgb16, "--compression", "lzw"), want: ref},
		flavour{name: "tiff-float.tif", make: func(t *testing.T, path string) {
			f := filepath.Join(work, "float.v")
			run(t, "vips", "colourspace", refPNG, f, "scrgb")
			run(t, "vips", "tiffsave", f, path)
		}, want: ref},
		flavour{name: "tiff-gray.tif", make: tiffFrom(grayPNG, "--compression", "lzw"), want: grayRGBA},
		flavour{name: "tiff-gray16.tif", make: tiffFrom(grey16, "--compression", "deflate"), want: grayRGBA},
		flavour{name: "tiff-alpha.tif", make: tiffFrom(holedPNG, "--compression", "lzw"), want: holed, alpha: true},
		flavour{name: "tiff-palette.tif", make: copyOf(palTIFF), want: palWant},
		flavour{name: "tiff-cmyk.tif", make: copyOf(cmykTIFF), want: viewed(cmykTIFF)},
		flavour{name: "tiff-lab.tif", make: func(t *testing.T, path string) {
			lab := filepath.Join(work, "lab.v")
			run(t, "vips", "colourspace", refPNG, lab, "lab")
			run(t, "vips", "tiffsave", lab, path)
		}, want: ref},
		flavour{name: "tiff-g4.tif", make: tiffFrom(bitPNG, "--compression", "ccittfax4", "--bitdepth", "1"), want: bitRGBA},
		flavour{name: "tiff-bigtiff.tif", make: tiffFrom(refPNG, append([]string{"--bigtiff", "--compression", "lzw"}, tile...)...), want: ref},
		flavour{name: "tiff-bigendian.tif", make: func(t *testing.T, path string) {
			le := filepath.Join(work, "le.tif")
			run(t, "vips", "tiffsave", refPNG, le, "--compression", "lzw")
			run(t, "tiffcp", "-B", le, path)
		}, want: ref},
		flavour{name: "tiff-multipage.tif", make: func(t *testing.T, path string) {
			first, second := filepath.Join(work, "page1.tif"), filepath.Join(work, "page2.tif")
			run(t, "vips", "tiffsave", refPNG, first, "--compression", "lzw")
			run(t, "vips", "invert", refPNG, second)
			run(t, "tiffcp", first, second, path)
		}, want: ref},
		flavour{name: "tiff-pyramid-pages.tif", make: tiffFrom(refPNG, append([]string{"--pyramid", "--compression", "jpeg", "--Q", "95"}, tile...)...), want: ref, stored: true},
		flavour{name: "tiff-pyramid-subifd.tif", make: tiffFrom(refPNG, append([]string{"--pyramid", "--subifd", "--compression", "jpeg", "--Q", "95"}, tile...)...), want: ref, stored: true},
		flavour{name: "tiff-icc-pyramid.tif", make: tiffFrom(adobe, append([]string{"--pyramid", "--compression", "jpeg", "--Q", "95"}, tile...)...), want: ref, stored: true},
		flavour{name: "tiff-icc-strip.tif", make: tiffFrom(adobe, "--compression", "lzw"), want: ref},
		flavour{name: "tiff-orientation-8.tif", make: func(t *testing.T, path string) {
			st := writePNG(t, filepath.Join(work, "stored8.png"), storedAs(ref, 8))
			run(t, "vips", "tiffsave", st, path, "--compression", "lzw")
			run(t, "tiffset", "-s", "274", "8", path)
		}, want: ref},

		flavour{name: "jpeg-baseline.jpg", make: cjpeg(), want: ref},
		flavour{name: "jpeg-progressive.jpg", make: cjpeg("-progressive"), want: ref},
		flavour{name: "jpeg-arithmetic.jpg", make: cjpeg("-arithmetic"), want: ref},
		flavour{name: "jpeg-444.jpg", make: cjpeg("-sample", "1x1"), want: ref},
		flavour{name: "jpeg-422.jpg", make: cjpeg("-sample", "2x1"), want: ref},
		flavour{name: "jpeg-420.jpg", make: cjpeg("-sample", "2x2"), want: ref},
		flavour{name: "jpeg-cmyk.jpg", make: copyOf(cmykJPEG), want: viewed(cmykJPEG)},
		flavour{name: "jpeg-icc.jpg", make: vips("jpegsave", adobe, "--Q", "95"), want: ref},
		flavour{name: "jpeg-orientation-6.jpg", make: func(t *testing.T, path string) {
			os.WriteFile(path, jpegWithOrientation(t, storedAs(ref, 6), 6), 0o644)
		}, want: ref},

		flavour{name: "png-16bit.png", make: vips("pngsave", rgb16, "--bitdepth", "16"), want: ref},
		flavour{name: "png-interlaced.png", make: vips("pngsave", refPNG, "--interlace"), want: ref},
		flavour{name: "png-palette-trns.png", make: func(t *testing.T, path string) {
			writePNG(t, path, paletted(withHole(post)))
		}, want: withHole(post), alpha: true},
		flavour{name: "png-iccp.png", make: vips("pngsave", adobe), want: ref},

		flavour{name: "jp2-lossless.jp2", make: vips("jp2ksave", refPNG, "--lossless"), want: ref},
		flavour{name: "jp2-lossy.jp2", make: vips("jp2ksave", refPNG, "--Q", "95"), want: ref},
		flavour{name: "jp2-tiled.jp2", make: vips("jp2ksave", refPNG, "--lossless", "--tile-width", "64", "--tile-height", "64"), want: ref},
		// libvips 8.14's jp2ksave aborts on --subsample-mode on (an
		// assertion on the bands), so chroma subsampling is not made here.
		flavour{name: "jp2-16bit.jp2", make: vips("jp2ksave", rgb16, "--lossless"), want: ref},
		flavour{name: "jp2-gray.jp2", make: vips("jp2ksave", grayPNG, "--lossless"), want: grayRGBA},

		flavour{name: "webp-lossless.webp", make: vips("webpsave", refPNG, "--lossless"), want: ref},
		flavour{name: "webp-lossy.webp", make: vips("webpsave", refPNG, "--Q", "95"), want: ref},
		flavour{name: "gif.gif", make: vips("gifsave", postPNG), want: post},
	)
	return fl
}

// paletted is img (at most 256 colours) as a palette image, whose
// transparent colours image/png writes as a tRNS chunk.
func paletted(img *image.RGBA) *image.Paletted {
	var pal color.Palette
	idx := map[color.RGBA]uint8{}
	out := image.NewPaletted(img.Bounds(), nil)
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			c := img.RGBAAt(x, y)
			i, ok := idx[c]
			if !ok {
				i = uint8(len(pal))
				idx[c] = i
				pal = append(pal, c)
			}
			out.SetColorIndex(x, y, i)
		}
	}
	out.Palette = pal
	return out
}

// fetch gets a URL and returns its body, or why not.
func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return body, nil
}

// TestCorpus makes the corpus of issue 22, one small image per source
// flavour institutions hold, each from the project's test chart with
// orientation markers, serves it, and scores what a viewer would get
// (info.json, a !512,512 thumbnail, a pct: region, an aligned tile,
// colour managed) against the flavour's expected appearance: exact sizes
// and a mean absolute difference of at most 4 of 255.
func TestCorpus(t *testing.T) {
	needTools(t, []string{"vips", "cjpeg", "tiffcp", "tiffset", "tiffmedian", "tiff2rgba"}, adobeRGBProfile)
	work, root := t.TempDir(), t.TempDir()
	ref := corpusReference(t, work)
	flavours := corpusFlavours(t, work, ref)
	for _, f := range flavours {
		f.make(t, filepath.Join(root, f.name))
	}
	cfg := config.Default()
	cfg.Root = root
	cfg.CacheMemory = 0
	_, hs := serve(t, cfg)

	failing := 0
	for _, f := range flavours {
		problems := scoreFlavour(t, hs.URL+"/iiif/3/"+f.name, f, work)
		why, known := knownCorpusFailures[f.name]
		switch {
		case len(problems) > 0 && known:
			t.Logf("%s: known failure (%s): %s", f.name, why, strings.Join(problems, "; "))
		case len(problems) > 0:
			failing++
			t.Errorf("%s: %s", f.name, strings.Join(problems, "; "))
		case known:
			t.Errorf("%s is served right now: remove it from knownCorpusFailures (and README)", f.name)
		}
	}
	t.Logf("%d flavours, %d known failures, %d new failures", len(flavours), len(knownCorpusFailures), failing)
}

// scoreFlavour requests what a viewer would of the image at base and
// returns what is wrong.
func scoreFlavour(t *testing.T, base string, f flavour, work string) []string {
	var problems []string
	body, err := fetch(base + "/info.json")
	if err != nil {
		return []string{"info.json: " + err.Error()}
	}
	var info struct {
		Width, Height int
		Tiles         []struct{ Width, Height int }
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return []string{"info.json: " + err.Error()}
	}
	if info.Width != corpusW || info.Height != corpusH {
		problems = append(problems, fmt.Sprintf("info.json size %dx%d, want %dx%d", info.Width, info.Height, corpusW, corpusH))
	}
	sub := func(r image.Rectangle) image.Image {
		return f.want.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(r)
	}
	tw, th := corpusW, corpusH
	if len(info.Tiles) > 0 && info.Tiles[0].Width > 0 {
		tw = info.Tiles[0].Width
		th = info.Tiles[0].Height
		if th == 0 {
			th = tw
		}
	}
	// The tile in the second column when there is one, else the first.
	x0 := 0
	if tw < corpusW {
		x0 = tw
	}
	tr := image.Rect(x0, 0, min(x0+tw, corpusW), min(th, corpusH))
	tileFormat := "png"
	if f.stored {
		tileFormat = "jpg"
	}
	for _, c := range []struct {
		what, path string
		want       image.Image
	}{
		{"thumbnail", "/full/!512,512/0/default.png", f.want},
		{"pct region", "/pct:25,25,50,50/max/0/default.png", sub(image.Rect(corpusW/4, corpusH/4, 3*corpusW/4, 3*corpusH/4))},
		{"aligned tile", fmt.Sprintf("/%d,%d,%d,%d/%d,%d/0/default.%s", tr.Min.X, tr.Min.Y, tr.Dx(), tr.Dy(), tr.Dx(), tr.Dy(), tileFormat), sub(tr)},
	} {
		body, err := fetch(base + c.path)
		if err != nil {
			problems = append(problems, c.what+": "+err.Error())
			continue
		}
		var got image.Image
		if bytes.Contains(body, []byte("ICC_PROFILE\x00")) || bytes.Contains(body, []byte("iCCP")) {
			got, err = srgbOf(work, body)
		} else {
			got, _, err = image.Decode(bytes.NewReader(body))
		}
		if err != nil {
			problems = append(problems, c.what+": "+err.Error())
			continue
		}
		if d := meanAbsDiff(got, c.want); d < 0 {
			problems = append(problems, fmt.Sprintf("%s is %v, want %v", c.what, got.Bounds().Size(), c.want.Bounds().Size()))
		} else if d > 4 {
			problems = append(problems, fmt.Sprintf("%s differs by %.1f", c.what, d))
		}
	}
	return problems
}

// srgbOf decodes a served image as a colour-managed viewer shows it: with
// libvips, its embedded profile (if any) converted to sRGB.
func srgbOf(work string, data []byte) (image.Image, error) {
	in, out := filepath.Join(work, "served"), filepath.Join(work, "served.png")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command("vips", "icc_transform", in, out, "srgb", "--embedded", "--input-profile", "srgb").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vips icc_transform: %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(f)
}
