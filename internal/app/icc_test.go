package app

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/probe"
)

// adobeRGBProfile is Debian's AdobeRGB-compatible profile (package
// icc-profiles-free), which scripts/test installs.
const adobeRGBProfile = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc"

// needTools skips (or, under IIIFD_REQUIRE_TOOLS, fails) a test when a
// command or file it needs is missing.
func needTools(t *testing.T, tools []string, files ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "the command "+tool)
		}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" || os.Getenv("IIIFD_TEST_TOOLS") != "" {
		t.Fatalf("%v missing (scripts/test installs them)", missing)
	}
	t.Skipf("%v missing", missing)
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// toSRGB decodes an image file with libvips, converting it from its
// embedded profile (sRGB when it has none) to sRGB, as a colour-managed
// viewer does.
func toSRGB(t *testing.T, dir string, data []byte) image.Image {
	t.Helper()
	in, out := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "out.png")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "vips", "icc_transform", in, out, "srgb", "--embedded", "--input-profile", "srgb")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func getBytes(t *testing.T, url string) []byte {
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
	return body
}

// TestPassthroughICC serves a pyramidal JPEG TIFF in AdobeRGB: its aligned
// tile passes through as stored, with the source's profile embedded, and
// a colour-managed decoder shows it as the rendered (sRGB) tile of the
// same region.
func TestPassthroughICC(t *testing.T) {
	needTools(t, []string{"vips"}, adobeRGBProfile)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.png")
	var buf bytes.Buffer
	png.Encode(&buf, markerImage(256, 192))
	os.WriteFile(src, buf.Bytes(), 0o644)
	adobe := filepath.Join(dir, "adobe.v")
	run(t, "vips", "icc_transform", src, adobe, adobeRGBProfile, "--input-profile", "srgb")
	tif := filepath.Join(dir, "adobe.tif")
	run(t, "vips", "tiffsave", adobe, tif, "--tile", "--tile-width", "64", "--tile-height", "64",
		"--pyramid", "--compression", "jpeg", "--Q", "95")

	// The stored tile at column 3, row 0: the green marker.
	f, err := os.Open(tif)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	info, err := probe.Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	lv := info.Levels[0].TIFF
	if !lv.HasICCProfile() {
		t.Fatal("the probe found no ICC profile in the AdobeRGB TIFF")
	}
	br, err := lv.TileRange(f, 3)
	if err != nil {
		t.Fatal(err)
	}
	stored := make([]byte, br.Length)
	f.ReadAt(stored, br.Offset)

	cfg := config.Default()
	cfg.Root = dir
	cfg.CacheMemory = 0
	_, hs := serve(t, cfg)
	base := hs.URL + "/iiif/3/adobe.tif/192,0,64,64/64,64/0/default"
	passed := getBytes(t, base+".jpg")
	if !bytes.HasSuffix(passed, stored[2:]) {
		t.Fatal("the aligned tile was not passed through: its coded data is not the stored tile's")
	}
	rendered, err := png.Decode(bytes.NewReader(getBytes(t, base+".png")))
	if err != nil {
		t.Fatal(err)
	}
	// The test means something only if the profile matters: read as
	// sRGB, the stored pixels differ visibly from the rendered ones.
	raw, err := jpeg.Decode(bytes.NewReader(passed))
	if err != nil {
		t.Fatal(err)
	}
	if d := meanAbsDiff(raw, rendered); d >= 0 && d <= 4 {
		t.Fatalf("stored AdobeRGB pixels read as sRGB differ from the render by only %.1f: the test image shows no colour difference", d)
	}
	if d := meanAbsDiff(toSRGB(t, dir, passed), rendered); d < 0 || d > 4 {
		t.Errorf("passed-through tile, colour managed, differs from the rendered tile by %.1f (want <= 4)", d)
	}
}
