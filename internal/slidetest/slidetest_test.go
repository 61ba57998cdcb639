package slidetest_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/slidetest"
)

// TestVendors asks OpenSlide's own tool which vendor wrote each generated
// slide: the generators are faithful enough when OpenSlide takes each for
// its vendor's (and reads it whole: properties, levels).
func TestVendors(t *testing.T) {
	dir := slidetest.Dir(t)
	slidetest.Require(t, "openslide-show-properties")
	for name, vendor := range map[string]string{
		"slide.svs": "aperio", "generic.tif": "generic-tiff", "philips.tiff": "philips", "ventana.bif": "ventana",
		"slide.ndpi": "hamamatsu", "vms/slide.vms": "hamamatsu",
		"leica.scn": "leica",
	} {
		out, err := exec.Command("openslide-show-properties", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Errorf("%s: openslide-show-properties: %v\n%s", name, err, out)
			continue
		}
		if want := "openslide.vendor: '" + vendor + "'"; !strings.Contains(string(out), want) {
			t.Errorf("%s: no %q in OpenSlide's properties:\n%s", name, want, out)
		}
	}
}
