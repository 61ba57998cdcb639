// Package slidetest gives tests whole-slide images made by
// scripts/make-slides: generated once and kept in the user's cache
// directory under the hash of the script, so that later test runs (and
// the other packages' tests) reuse them.
package slidetest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RequireEnv, when set to 1 (scripts/test sets it), makes a missing tool
// fail the test instead of skipping it.
const RequireEnv = "IIIFD_REQUIRE_TOOLS"

// Tools are the commands make-slides and the tests comparing with
// OpenSlide run.
var Tools = []string{"vips", "vipsheader", "tiffcp", "tiffset", "tiffinfo", "bc", "python3", "openslide-write-png"}

var (
	once sync.Once
	dir  string
	err  error
	out  []byte
)

// Require skips t, or fails it when RequireEnv is set, unless every
// command named is on the PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(RequireEnv) == "1" || os.Getenv("IIIFD_TEST_TOOLS") == "1" {
				t.Fatalf("%s is needed (scripts/deps.sh installs it)", tool)
			}
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
}

// Root returns the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatal("slidetest: no go.mod above the working directory")
		}
		d = parent
	}
}

// Dir returns the directory holding the generated slides: slide.svs,
// generic.tif, philips.tiff, ventana.bif, slide.ndpi, vms/slide.vms
// (with its JPEGs), leica.scn and the damaged
// damaged.svs, damaged.bif and crash.bif (see scripts/make-slides).
// Tests must not change them.
func Dir(t testing.TB) string {
	t.Helper()
	Require(t, Tools...)
	script := filepath.Join(Root(t), "scripts", "make-slides")
	once.Do(func() {
		var b []byte
		if b, err = os.ReadFile(script); err != nil {
			return
		}
		sum := sha256.Sum256(b)
		cache, cerr := os.UserCacheDir()
		if cerr != nil {
			cache = os.TempDir()
		}
		dir = filepath.Join(cache, "iiifd-test-slides", hex.EncodeToString(sum[:8]))
		if _, serr := os.Stat(dir); serr == nil {
			return
		}
		// Several test binaries may get here at once (go test runs
		// packages in parallel): each writes its own copy and renames
		// it into place; the first rename wins, the others' are removed.
		if err = os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return
		}
		var tmp string
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".slides-"); err != nil {
			return
		}
		defer os.RemoveAll(tmp)
		if out, err = exec.Command(script, tmp).CombinedOutput(); err != nil {
			return
		}
		if rerr := os.Rename(tmp, dir); rerr != nil {
			if _, serr := os.Stat(dir); serr != nil {
				err = rerr
			}
		}
	})
	if err != nil {
		t.Fatalf("make-slides: %v\n%s", err, out)
	}
	return dir
}

// Python returns a Python 3 that imports openslide (Debian's
// python3-openslide installs it for /usr/bin/python3, which another
// python3 earlier on the PATH may not see).
func Python(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import openslide").Run() == nil {
			return py
		}
	}
	if os.Getenv(RequireEnv) == "1" || os.Getenv("IIIFD_TEST_TOOLS") == "1" {
		t.Fatal("python3-openslide is needed (scripts/deps.sh installs it)")
	}
	t.Skip("python3-openslide is not installed (scripts/deps.sh installs it)")
	return ""
}
