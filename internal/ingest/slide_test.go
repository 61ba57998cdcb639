package ingest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/slidetest"
)

// TestSlides ingests the generated Aperio and Philips slides, in the
// worker process as iiifd does, into pyramidal TIFFs: full size, and the
// unscanned corner of the Philips slide white, as OpenSlide's
// transparent pixels flattened.
func TestSlides(t *testing.T) {
	dir := slidetest.Dir(t)
	for _, name := range []string{"slide.svs", "philips.tiff"} {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out.tif")
			if err := Run(context.Background(), filepath.Join(dir, name), dst, Options{}, worker); err != nil {
				t.Fatal(err)
			}
			info := probeFile(t, dst)
			if info.Format != probe.TIFF || info.Width != 2400 || info.Height != 1800 || info.Bands != 3 || len(info.Levels) < 3 {
				t.Fatalf("probe: %s %dx%d, %d bands, %d levels", info.Format, info.Width, info.Height, info.Bands, len(info.Levels))
			}
			out, err := exec.Command("vips", "getpoint", dst, "5", "5").Output()
			if err != nil {
				t.Fatal(err)
			}
			white := fmt.Sprint(string(out)) == "255 255 255 \n"
			if white != (name == "philips.tiff") {
				t.Errorf("pixel 5,5 is %q", out)
			}
		})
	}
}
