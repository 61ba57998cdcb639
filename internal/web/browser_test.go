package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/browsertest"
)

// tifyPage opens the manifest given as ?manifest= in Tify, a IIIF
// viewer from npm, as a site other than iiifd would.
const tifyPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tify</title>
<link rel="stylesheet" href="/tify/tify.css"></head>
<body style="margin:0"><div id="tify" style="height:100vh"></div>
<script type="module">
import Tify from '/tify/tify.js';
const manifestUrl = new URLSearchParams(location.search).get('manifest');
new Tify({ container: '#tify', manifestUrl, translationsDirUrl: '/tify/translations' });
</script></body></html>`

// TestBrowser runs web/test/browser.mjs in headless Chromium against the
// whole server on loopback: gallery thumbnails, the viewer's tiles,
// zooming, an upload, and the manifest in Tify (served from another
// origin, so CORS is exercised too).
func TestBrowser(t *testing.T) {
	bt := browsertest.Find(t, "node_modules/tify/dist/tify.js")
	webDir, node, chromium := bt.Web, bt.Node, bt.Chromium

	srv := server(t, "", nil)
	mux := http.NewServeMux()
	mux.Handle("/tify/", http.StripPrefix("/tify/", http.FileServer(http.Dir(filepath.Join(webDir, "node_modules/tify/dist")))))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(tifyPage))
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tify := httptest.NewServer(mux)
	defer tify.Close()

	upload := filepath.Join(t.TempDir(), "Browser upload.png")
	if err := os.WriteFile(upload, pngBytes(t, 1500, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(webDir, "test", "browser.mjs"))
	cmd.Env = append(os.Environ(),
		"IIIFD_URL="+srv.URL,
		"IIIFD_TOKEN="+token,
		"TIFY_URL="+tify.URL+"/",
		"UPLOAD_FILE="+upload,
		"CHROMIUM="+chromium,
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("browser.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
}
