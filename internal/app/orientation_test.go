package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// markerImage is a w×h image that no turn or mirror leaves alike: a red
// block at the top left, green at the top right, blue at the bottom left,
// on a grey ramp that grows to the right and down.
func markerImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(40 + 150*x/w), uint8(40 + 150*y/h), 110, 255}
			switch {
			case x < w/4 && y < h/4:
				c = color.RGBA{230, 20, 20, 255}
			case x >= 3*w/4 && y < h/4:
				c = color.RGBA{20, 200, 20, 255}
			case x < w/4 && y >= 3*h/4:
				c = color.RGBA{20, 20, 230, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// storedAs returns the pixels to store so that a viewer applying EXIF
// orientation o shows shown: the inverse of the orientation.
func storedAs(shown *image.RGBA, o int) *image.RGBA {
	dw, dh := shown.Bounds().Dx(), shown.Bounds().Dy()
	sw, sh := plan.OrientedSize(o, dw, dh)
	st := image.NewRGBA(image.Rect(0, 0, sw, sh))
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = sw-1-x, y
			case 3:
				sx, sy = sw-1-x, sh-1-y
			case 4:
				sx, sy = x, sh-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, sh-1-x
			case 7:
				sx, sy = sw-1-y, sh-1-x
			case 8:
				sx, sy = sw-1-y, x
			default:
				sx, sy = x, y
			}
			st.SetRGBA(sx, sy, shown.RGBAAt(x, y))
		}
	}
	return st
}

// jpegWithOrientation encodes img as a JPEG carrying an EXIF block whose
// only tag is Orientation o (big-endian TIFF structure in APP1).
func jpegWithOrientation(t *testing.T, img image.Image, o int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8))     // IFD0 offset
	binary.Write(&tiff, binary.BigEndian, uint16(1))     // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x112)) // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))     // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))
	binary.Write(&tiff, binary.BigEndian, uint16(o))
	binary.Write(&tiff, binary.BigEndian, uint16(0))
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	b := buf.Bytes()
	out := append([]byte{}, b[:2]...) // SOI
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, b[2:]...)
}

// tiffWithOrientation writes img as a TIFF with vips (tiffsave with args)
// and sets its Orientation tag to o with tiffset.
func tiffWithOrientation(t *testing.T, dir string, img image.Image, o int, args ...string) string {
	t.Helper()
	for _, tool := range []string{"vips", "tiffset"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" {
				t.Fatalf("%s is missing (apt-get install libvips-tools libtiff-tools)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	src := filepath.Join(dir, fmt.Sprintf("src-%d.png", o))
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	png.Encode(f, img)
	f.Close()
	dst := filepath.Join(dir, fmt.Sprintf("o%d.tif", o))
	if out, err := exec.Command("vips", append([]string{"tiffsave", src, dst}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("vips tiffsave: %v: %s", err, out)
	}
	if out, err := exec.Command("tiffset", "-s", "274", fmt.Sprint(o), dst).CombinedOutput(); err != nil {
		t.Fatalf("tiffset: %v: %s", err, out)
	}
	os.Remove(src)
	return dst
}

// meanAbsDiff compares two images of the same size channel by channel
// (red, green, blue) and returns the mean absolute difference, or -1 when
// their sizes differ.
func meanAbsDiff(a, b image.Image) float64 {
	if a.Bounds().Size() != b.Bounds().Size() {
		return -1
	}
	var sum, n float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

// getImage fetches an image from the server and decodes it.
func getImage(t *testing.T, url string) image.Image {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	img, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return img
}

// getSize fetches an info.json and returns its width and height.
func getSize(t *testing.T, url string) (int, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct{ Width, Height int }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return info.Width, info.Height
}

// TestOrientation stores the same picture turned and mirrored the eight
// EXIF ways, as JPEGs with an EXIF block, strip TIFFs and tiled pyramidal
// JPEG TIFFs with the Orientation tag, and requires every one to be served
// upright: info.json gives the displayed size, and a whole image, a region
// and a scaled region show the displayed pixels. With --ignore-orientation
// they are served as stored.
func TestOrientation(t *testing.T) {
	const w, h = 96, 64
	shown := markerImage(w, h)
	dir := t.TempDir()
	for o := 1; o <= 8; o++ {
		st := storedAs(shown, o)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("o%d.jpg", o)), jpegWithOrientation(t, st, o), 0o644); err != nil {
			t.Fatal(err)
		}
		strip := tiffWithOrientation(t, dir, st, o)
		os.Rename(strip, filepath.Join(dir, fmt.Sprintf("s%d.tif", o)))
		tiffWithOrientation(t, dir, st, o, "--tile", "--tile-width", "32", "--tile-height", "32", "--pyramid", "--compression", "jpeg", "--Q", "95")
	}
	cfg := config.Default()
	cfg.Root = dir
	cfg.CacheMemory = 0
	_, hs := serve(t, cfg)
	region := shown.SubImage(image.Rect(48, 0, 96, 32))
	for o := 1; o <= 8; o++ {
		for _, id := range []string{fmt.Sprintf("o%d.jpg", o), fmt.Sprintf("s%d.tif", o), fmt.Sprintf("o%d.tif", o)} {
			base := hs.URL + "/iiif/3/" + id
			if gw, gh := getSize(t, base+"/info.json"); gw != w || gh != h {
				t.Errorf("%s: info.json says %dx%d, want the displayed %dx%d", id, gw, gh, w, h)
			}
			if d := meanAbsDiff(getImage(t, base+"/full/max/0/default.png"), shown); d < 0 || d > 4 {
				t.Errorf("%s: full image differs from the upright picture by %.1f (size or pixels)", id, d)
			}
			if d := meanAbsDiff(getImage(t, base+"/48,0,48,32/max/0/default.png"), region); d < 0 || d > 4 {
				t.Errorf("%s: region 48,0,48,32 differs from the upright picture's by %.1f", id, d)
			}
			// The tile at the top right at half size: the green block.
			got := getImage(t, base+"/48,0,48,32/24,/0/default.png")
			if r, g, b, _ := got.At(20, 4).RGBA(); g>>8 < 150 || r>>8 > 80 || b>>8 > 80 {
				t.Errorf("%s: scaled region's top right is %d,%d,%d, want the green marker", id, r>>8, g>>8, b>>8)
			}
		}
	}

	cfg.IgnoreOrientation = true
	_, hs = serve(t, cfg)
	for _, id := range []string{"o6.jpg", "s6.tif", "o6.tif"} {
		if gw, gh := getSize(t, hs.URL+"/iiif/3/"+id+"/info.json"); gw != h || gh != w {
			t.Errorf("--ignore-orientation: %s info.json says %dx%d, want the stored %dx%d", id, gw, gh, h, w)
		}
		if d := meanAbsDiff(getImage(t, hs.URL+"/iiif/3/"+id+"/full/max/0/default.png"), storedAs(shown, 6)); d < 0 || d > 4 {
			t.Errorf("--ignore-orientation: %s differs from the stored pixels by %.1f", id, d)
		}
	}
}

// TestIngestUpright ingests turned sources into a pyramidal TIFF and a
// tile directory: both are written upright, without an orientation tag,
// so their stored tiles pass through as they are, and they show the
// picture as the source did.
func TestIngestUpright(t *testing.T) {
	const w, h = 600, 400
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	shown := markerImage(w, h)
	src := t.TempDir()
	root := t.TempDir()
	for _, o := range []int{6, 3, 5} {
		in := filepath.Join(src, fmt.Sprintf("o%d.jpg", o))
		if err := os.WriteFile(in, jpegWithOrientation(t, storedAs(shown, o), o), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ingest.Run(context.Background(), in, filepath.Join(root, fmt.Sprintf("p%d.tif", o)), ingest.Options{TileSize: 256}, nil); err != nil {
			t.Fatal(fault.Detail(err))
		}
		if err := ingest.Run(context.Background(), in, filepath.Join(root, fmt.Sprintf("d%d", o)), ingest.Options{Format: ingest.FormatTiles, TileSize: 256}, nil); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(root, fmt.Sprintf("p%d.tif", o)))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		info, err := probe.Read(f, st.Size())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if info.Orientation > 1 || info.Width != w || info.Height != h {
			t.Errorf("ingested o%d: %dx%d with orientation %d, want %dx%d upright", o, info.Width, info.Height, info.Orientation, w, h)
		}
	}
	cfg := config.Default()
	cfg.Root = root
	cfg.CacheMemory = 0
	_, hs := serve(t, cfg)
	for _, o := range []int{6, 3, 5} {
		for _, id := range []string{fmt.Sprintf("p%d.tif", o), fmt.Sprintf("d%d", o)} {
			if d := meanAbsDiff(getImage(t, hs.URL+"/iiif/3/"+id+"/full/max/0/default.png"), shown); d < 0 || d > 6 {
				t.Errorf("ingested %s differs from the upright picture by %.1f", id, d)
			}
		}
	}
}
