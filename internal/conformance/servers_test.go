//go:build !js && !wasip1

package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/conformance"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/samples"
)

// The limits both servers are configured with: the worker's defaults.
const (
	maxArea = 4096 * 4096
	jpegMax = 4096
)

func TestMain(m *testing.M) {
	if err := pixels.Startup(pixels.Config{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// repoRoot is the repository's root: where go.mod is.
func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = up
	}
}

// fixtures writes the images both servers serve: the sample julia.jpg
// (2400×1600) as a flat JPEG, as a pyramidal TIFF with 256-pixel JPEG
// tiles (julia.tif) and as a IIIF level-0 tile directory (tiles/), as
// iiifd ingest makes them. The suite runs on the two pyramids; the flat
// file, which the worker decodes whole for every request, only in a few
// parity checks.
func fixtures(t *testing.T) (string, []conformance.Image) {
	dir := t.TempDir()
	b, err := fs.ReadFile(samples.FS(), "julia.jpg")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "julia.jpg")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := ingest.Build(ctx, src, filepath.Join(dir, "julia.tif"), ingest.Options{Format: ingest.FormatPTIFF, TileSize: 256}); err != nil {
		t.Fatal(err)
	}
	if err := ingest.Build(ctx, src, filepath.Join(dir, "tiles"), ingest.Options{Format: ingest.FormatTiles, TileSize: 256}); err != nil {
		t.Fatal(err)
	}
	adobeFixture(t, src, filepath.Join(dir, "adobe.tif"))
	return dir, []conformance.Image{{ID: "tiles", Width: 2400, Height: 1600}, {ID: "julia.tif", Width: 2400, Height: 1600}}
}

// adobeProfile is Debian's AdobeRGB-compatible profile (package
// icc-profiles-free, which scripts/test installs).
const adobeProfile = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc"

// adobeFixture writes src converted to AdobeRGB as a pyramidal TIFF with
// 256-pixel JPEG tiles and the profile embedded (adobe.tif): its aligned
// tiles pass through with the profile spliced in, by both servers alike.
func adobeFixture(t *testing.T, src, dst string) {
	_, err := exec.LookPath("vips")
	if err == nil {
		_, err = os.Stat(adobeProfile)
	}
	if err != nil {
		if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" || os.Getenv("IIIFD_TEST_TOOLS") != "" {
			t.Fatalf("vips or the AdobeRGB profile is missing: %v", err)
		}
		t.Skipf("vips or the AdobeRGB profile is missing: %v", err)
	}
	v := filepath.Join(t.TempDir(), "adobe.v")
	for _, args := range [][]string{
		{"icc_transform", src, v, adobeProfile},
		{"tiffsave", v, dst, "--tile", "--tile-width", "256", "--tile-height", "256", "--pyramid", "--compression", "jpeg", "--Q", "90"},
	} {
		if out, err := exec.Command("vips", args...).CombinedOutput(); err != nil {
			t.Fatalf("vips %v: %v: %s", args, err, out)
		}
	}
}

// origin serves dir as a static origin on loopback, with Range requests
// (http.FileServer), and three keys that fail: slow.tif never answers,
// broken.tif is a 500, moved.tif a redirect.
func origin(t *testing.T, dir string) *httptest.Server {
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow.tif":
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		case "/broken.tif":
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		case "/moved.tif":
			http.Redirect(w, r, "/julia.tif", http.StatusFound)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// worker builds dist/edge (make edge) into a temporary folder and runs
// it in workerd on loopback with ORIGIN set to originURL.
func worker(t *testing.T, originURL string) string {
	root := repoRoot(t)
	bin := filepath.Join(root, "edge", "node_modules", ".bin", "workerd")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" || os.Getenv("IIIFD_TEST_TOOLS") != "" {
			t.Fatalf("workerd is not installed (npm ci in edge/): %v", err)
		}
		t.Skipf("workerd is not installed (npm ci in edge/)")
	}
	dist := filepath.Join(t.TempDir(), "edge")
	out, err := exec.Command("make", "-C", root, "--no-print-directory", "edge", "EDGE="+dist).CombinedOutput()
	if err != nil {
		t.Fatalf("make edge: %v\n%s", err, out)
	}
	t.Logf("%s", lastLine(out))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "serve", filepath.Join(dist, "workerd.capnp"), "--socket-addr", "http="+addr)
	cmd.Env = append(os.Environ(), "ORIGIN="+originURL, "ORIGIN_TIMEOUT=2")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("workerd:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/_edge/memory")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("workerd did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base
}

func lastLine(b []byte) string {
	s := strings.Split(strings.TrimSpace(string(b)), "\n")
	return s[len(s)-1]
}

func native(t *testing.T, dir string) string {
	cfg := config.Default()
	cfg.Root = dir
	cfg.MaxArea = maxArea
	cfg.FormatLimits[iiif.FormatJPG] = plan.FormatLimits{MaxWidth: jpegMax, MaxHeight: jpegMax}
	cfg.FormatLimits[iiif.FormatPNG] = plan.FormatLimits{MaxWidth: 3584, MaxHeight: 3584}
	_, srv := apptest.Serve(t, cfg)
	return srv.URL
}

// TestNativeAndWorker runs the conformance suite against the native
// server and the edge worker in workerd, both serving the same images,
// then compares their pixels and the worker's failures.
func TestNativeAndWorker(t *testing.T) {
	dir, images := fixtures(t)
	nat := native(t, dir)
	edge := worker(t, origin(t, dir).URL)
	opt := conformance.Options{Images: images, MaxArea: maxArea, JPEGMax: jpegMax}
	t.Run("native", func(t *testing.T) { conformance.Run(t, nat, opt) })
	t.Run("worker", func(t *testing.T) { conformance.Run(t, edge, opt) })
	t.Run("parity", func(t *testing.T) { parity(t, nat, edge, images) })
	t.Run("failures", func(t *testing.T) { failures(t, edge) })
	resp, err := http.Get(edge + "/_edge/memory")
	if err == nil {
		var m struct{ WasmMemoryBytes int64 }
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		t.Logf("worker: peak WebAssembly memory %d MiB", m.WasmMemoryBytes>>20)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return b
}

// parity asks both servers for the same images: aligned tiles must be
// the same bytes; everything else the same size, within a mean absolute
// difference of 2 (of 255) and a PSNR of 35 dB. Bitonal and GIF outputs
// are thresholded or dithered, so a pixel either side of the threshold
// flips: they are held to a looser mean only.
func parity(t *testing.T, nat, edge string, images []conformance.Image) {
	for _, tile := range []string{
		"/iiif/3/tiles/0,0,256,256/256,/0/default.jpg",
		"/iiif/3/tiles/512,512,512,512/256,/0/default.jpg",
		"/iiif/3/julia.tif/0,0,256,256/256,256/0/default.jpg",
		"/iiif/3/julia.tif/512,1024,512,512/256,256/0/default.jpg",
		"/iiif/2/julia.tif/256,256,256,256/256,/0/default.jpg",
	} {
		a, b := get(t, nat+tile), get(t, edge+tile)
		if !bytes.Equal(a, b) {
			t.Errorf("aligned tile %s: native %d bytes, worker %d bytes, not the same", tile, len(a), len(b))
		}
	}
	// A stored tile of a source with an ICC profile carries the profile,
	// from either server (issue 22).
	for _, srv := range []string{nat, edge} {
		tile := get(t, srv+"/iiif/3/adobe.tif/256,0,256,256/256,256/0/default.jpg")
		if !bytes.Contains(tile, []byte("ICC_PROFILE\x00")) {
			t.Errorf("%s: the passed-through tile of adobe.tif has no ICC profile", srv)
		}
		if other := get(t, nat+"/iiif/3/adobe.tif/256,0,256,256/256,256/0/default.jpg"); !bytes.Equal(tile, other) {
			t.Errorf("adobe.tif's aligned tile differs between the servers")
		}
	}
	var paths []string
	for _, img := range images {
		for _, v := range []iiif.Version{iiif.V3, iiif.V2} {
			for _, rq := range conformance.Requests(v) {
				paths = append(paths, fmt.Sprintf("/iiif/%d/%s/%s", v, img.ID, rq))
			}
		}
	}
	paths = append(paths, "/iiif/3/julia.jpg/full/!512,512/0/default.jpg", "/iiif/3/julia.jpg/300,200,400,300/max/90/gray.png",
		"/iiif/2/julia.jpg/pct:50,50,50,50/300,/0/default.jpg")
	{
		{
			for _, path := range paths {
				rq := path[strings.LastIndexByte(path, '/')+1:]
				a, err := decode(get(t, nat+path))
				if err != nil {
					t.Fatalf("native %s: %v", path, err)
				}
				b, err := decode(get(t, edge+path))
				if err != nil {
					t.Fatalf("worker %s: %v", path, err)
				}
				if a.Bounds().Size() != b.Bounds().Size() {
					t.Errorf("%s: native %v, worker %v", path, a.Bounds().Size(), b.Bounds().Size())
					continue
				}
				mad, psnr := compare(a, b)
				loose := strings.Contains(rq, "bitonal") || strings.HasSuffix(rq, ".gif")
				switch {
				case loose && mad > 8:
					t.Errorf("%s: mean difference %.2f > 8", path, mad)
				case !loose && (mad > 2 || psnr < 35):
					t.Errorf("%s: mean difference %.2f (max 2), PSNR %.1f dB (min 35)", path, mad, psnr)
				}
			}
		}
	}
}

func decode(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

// compare returns the mean absolute difference of a and b's channels (of
// 255) and their PSNR in dB.
func compare(a, b image.Image) (mad, psnr float64) {
	var sum, sq float64
	var n int
	ra, rb := a.Bounds(), b.Bounds()
	for y := 0; y < ra.Dy(); y++ {
		for x := 0; x < ra.Dx(); x++ {
			r1, g1, b1, _ := a.At(ra.Min.X+x, ra.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(rb.Min.X+x, rb.Min.Y+y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				sum += math.Abs(d)
				sq += d * d
				n++
			}
		}
	}
	mad = sum / float64(n)
	mse := sq / float64(n)
	if mse == 0 {
		return mad, math.Inf(1)
	}
	return mad, 10 * math.Log10(255*255/mse)
}

// failures checks the worker's answers when the origin fails: a 504 for
// one that does not answer within ORIGIN_TIMEOUT, a 502 for one that
// fails or redirects.
func failures(t *testing.T, edge string) {
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/iiif/3/slow.tif/info.json", 504},
		{"/iiif/3/broken.tif/info.json", 502},
		{"/iiif/3/moved.tif/info.json", 502},
		{"/iiif/3/moved.tif/full/max/0/default.jpg", 502},
	} {
		resp, err := http.Get(edge + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: %d %q, want %d", tc.path, resp.StatusCode, b, tc.status)
		}
	}
}
