package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/publish"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// browserTests is set by scripts/test: then a missing browser, Node.js,
// npm package or browser engine fails the browser test instead of
// skipping it.
const browserTests = "IIIFD_BROWSER_TESTS"

// publishSamples publishes the sample images from a folder into a new
// site and returns the folder and the site.
func publishSamples(t *testing.T) (root, out string) {
	t.Helper()
	if publish.Engine() == nil {
		msg := "this build has no browser engine: run `make publish-assets` first"
		if os.Getenv(browserTests) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root = t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(t.TempDir(), "site")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"publish", "--root", root, out}, &stdout, &stderr); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "4 images built, 0 unchanged") || !strings.Contains(stderr.String(), "mandelbrot: 100%") {
		t.Fatalf("publish said %q, progress %q", stdout.String(), stderr.String())
	}
	return root, out
}

// TestPublish checks the files of a published site, that publishing again
// redoes only what changed, and the roots it refuses.
func TestPublish(t *testing.T) {
	root, out := publishSamples(t)
	for _, f := range []string{
		"index.html", "viewer.html", "iiif-sw.js", "iiif-engine.mjs", "iiif-host.js", "iiifd-edge.wasm", "wasm_exec.js",
		"assets/site.css", "assets/osd/openseadragon.min.js", "iiif/presentation/3/collection.json",
		"iiif/presentation/3/mandelbrot/manifest.json", "iiif/3/mandelbrot/full/384,288/0/default.jpg",
		"iiif/3/mandelbrot/0,0,512,512/512,512/0/default.jpg", "iiif/3/mandelbrot/4096,0,2048,2048/512,512/0/default.jpg",
	} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("the site lacks %s", f)
		}
	}
	var info struct {
		ID      string
		Profile string
	}
	b, _ := os.ReadFile(filepath.Join(out, "iiif/3/mandelbrot/info.json"))
	if err := json.Unmarshal(b, &info); err != nil || info.ID != "iiif/3/mandelbrot" || info.Profile != "level0" {
		t.Errorf("info.json: %+v, %v", info, err)
	}
	var coll struct{ Items []struct{ ID string } }
	b, _ = os.ReadFile(filepath.Join(out, "iiif/presentation/3/collection.json"))
	if err := json.Unmarshal(b, &coll); err != nil || len(coll.Items) != 4 || coll.Items[1].ID != "iiif/presentation/3/mandelbrot/manifest.json" {
		t.Errorf("collection: %+v, %v", coll, err)
	}

	// Again: nothing changed. Then one image changes and one goes.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"publish", "--quiet", "--root", root, out}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "0 images built, 4 unchanged, 0 removed") {
		t.Fatalf("second publish: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	julia, _ := os.ReadFile(filepath.Join(root, "julia.jpg"))
	if err := os.WriteFile(filepath.Join(root, "testchart.jpg"), julia, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "testchart.png"))
	os.Remove(filepath.Join(root, "zoneplate.jp2"))
	stdout.Reset()
	if code := run(context.Background(), []string{"publish", "--quiet", "--root", root, "--base-url", "https://example.org/site/", out}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "1 images built, 2 unchanged, 1 removed") {
		t.Fatalf("third publish: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "iiif/3/zoneplate")); !os.IsNotExist(err) {
		t.Errorf("a removed image's tiles are still there: %v", err)
	}
	b, _ = os.ReadFile(filepath.Join(out, "iiif/3/julia/info.json"))
	if json.Unmarshal(b, &info); info.ID != "https://example.org/site/iiif/3/julia" {
		t.Errorf("with --base-url, a kept image's id is %q", info.ID)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", "--root", "https://example.org/images", t.TempDir()}, "cannot be listed"},
		{[]string{"publish", "--root", root}, "want OUT"},
		{[]string{"publish", "--root", root, "--base-url", "ftp://x", t.TempDir()}, "base"},
	} {
		stderr.Reset()
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %q, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// miradorPage opens ?manifest= (relative to the page) in Mirador, from the
// site itself, so that the site's Service Worker serves it.
const miradorPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mirador</title><link rel="icon" href="data:,">
<script src="sw-register.js"></script>
<script src="mirador/mirador.min.js"></script></head>
<body style="margin:0"><div id="mirador" style="position:absolute;inset:0"></div>
<script>
window.iiifdServiceWorker.then(function () {
  var m = new URL(new URLSearchParams(location.search).get('manifest'), location.href).href;
  Mirador.viewer({ id: 'mirador', windows: [{ manifestId: m }], window: { allowClose: false } });
});
</script></body></html>`

// TestPublishBrowser publishes the samples, serves the site with a plain
// file server under a path, and runs web/test/publish.mjs in Chromium:
// the Service Worker, parity with the native server, the viewer, Mirador
// and offline use.
func TestPublishBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	webDir, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	for _, p := range []string{"node_modules/playwright-core/package.json", "node_modules/mirador/dist/mirador.min.js"} {
		if _, err := os.Stat(filepath.Join(webDir, p)); err != nil {
			missing = append(missing, "web/"+p+" (scripts/web-assets)")
		}
	}
	if len(missing) > 0 {
		msg := "browser tests need: " + strings.Join(missing, ", ")
		if os.Getenv(browserTests) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, out := publishSamples(t)
	mirador, err := os.ReadFile(filepath.Join(webDir, "node_modules/mirador/dist/mirador.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(out, "mirador"), 0o755)
	os.WriteFile(filepath.Join(out, "mirador/mirador.min.js"), mirador, 0o644)
	os.WriteFile(filepath.Join(out, "mirador.html"), []byte(miradorPage), 0o644)

	// The static host: a plain file server, the site under /pub/site/.
	mux := http.NewServeMux()
	mux.Handle("/pub/site/", http.StripPrefix("/pub/site", http.FileServer(http.Dir(out))))
	static := httptest.NewServer(mux)
	defer static.Close()

	// The native server over the same images.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--root", root}, io.Discard, &serveErr, func(a net.Addr) { addrc <- a })
	}()
	var nativeURL string
	select {
	case a := <-addrc:
		nativeURL = "http://" + a.String()
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, serveErr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the native server did not start")
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 400*time.Second)
	defer rcancel()
	cmd := exec.CommandContext(rctx, node, filepath.Join(webDir, "test", "publish.mjs"))
	cmd.Env = append(os.Environ(),
		"SITE_URL="+static.URL+"/pub/site/",
		"NATIVE_URL="+nativeURL,
		"CHROMIUM="+chromium,
		"MIRADOR=1",
	)
	cmd.WaitDelay = 10 * time.Second
	outb, err := cmd.CombinedOutput()
	t.Logf("publish.mjs:\n%s", outb)
	if err != nil {
		t.Fatalf("browser tests of the published site failed: %v", err)
	}
}

// TestPublishFromS3 publishes a bucket root (versitygw): its images are
// listed, downloaded and tiled; publishing again rebuilds nothing.
func TestPublishFromS3(t *testing.T) {
	if publish.Engine() == nil {
		t.Skip("this build has no browser engine: run `make publish-assets` first")
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("publish")
	s3test.Env(t, srv.Endpoint())
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"coll/notes.txt": []byte("not an image")}
	for _, name := range []string{"julia.jpg", "testchart.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files["coll/maps/"+name] = b
	}
	srv.Put(bucket, files)
	out := filepath.Join(t.TempDir(), "site")
	root := "s3://" + bucket + "/coll"
	for i, want := range []string{"2 images built, 0 unchanged", "0 images built, 2 unchanged"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"publish", "--quiet", "--root", root, out}, &stdout, &stderr); code != 0 ||
			!strings.Contains(stdout.String(), want) {
			t.Fatalf("publish %d: exit %d: %s %s", i+1, code, stdout.String(), stderr.String())
		}
	}
	for _, f := range []string{"iiif/3/maps/julia/info.json", "iiif/3/maps/testchart/0,0,512,512/512,512/0/default.jpg", "iiif/presentation/3/maps/julia/manifest.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("the site lacks %s", f)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".download-*")); len(left) > 0 {
		t.Errorf("downloads left behind: %v", left)
	}
}
