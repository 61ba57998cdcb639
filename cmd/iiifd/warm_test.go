package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/app/apptest"
)

func warmServer(t *testing.T) string {
	t.Helper()
	_, srv := apptest.Serve(t, apptest.Samples(t))
	return srv.URL
}

func xcache(t *testing.T, u string) string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.Header.Get("X-Cache")
}

func TestWarmIdentifiers(t *testing.T) {
	base := warmServer(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"warm", "--server", base, "--id", "julia", "--zoom", "2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// julia is 2400×1600 with 512 px tiles: scale factors 1, 2, 4, 8; the
	// two most zoomed-out levels hold 1 + 2 tiles, and info.json lists 6
	// sizes.
	if !strings.Contains(out.String(), "warmed 9 of 9 URLs (0 failed)") {
		t.Errorf("summary: %s", out.String())
	}
	for _, p := range []string{"/iiif/3/julia/0,0,2048,1600/512,400/0/default.jpg", "/iiif/3/julia/2048,0,352,1600/88,400/0/default.jpg", "/iiif/3/julia/full/300,200/0/default.jpg"} {
		if got := xcache(t, base+p); got != "HIT memory" {
			t.Errorf("%s after warming: X-Cache %q", p, got)
		}
	}
}

func TestWarmFromLog(t *testing.T) {
	base := warmServer(t)
	log := filepath.Join(t.TempDir(), "access.log")
	os.WriteFile(log, []byte(strings.Join([]string{
		`127.0.0.1 - - [23/Nov/2026:01:00:00 +0000] "GET /iiif/3/julia/full/!300,300/0/default.jpg HTTP/1.1" 200 5120`,
		`127.0.0.1 - - [23/Nov/2026:01:00:01 +0000] "GET /iiif/3/julia/full/!300,300/0/default.jpg HTTP/1.1" 200 5120`,
		base + "/iiif/3/testchart/full/200,/0/gray.png",
		"# a comment",
		"/iiif/3/missing/full/max/0/default.jpg",
		`time=2026-11-23 level=INFO msg=request path=/iiif/2/julia/full/150,/0/default.jpg status=200`,
	}, "\n")), 0o644)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"warm", "--server", base, "--urls", log}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "warmed 3 of 4 URLs (1 failed)") || !strings.Contains(out.String(), "FAIL /iiif/3/missing") {
		t.Errorf("exit %d: %s", code, out.String())
	}
	if got := xcache(t, base+"/iiif/3/julia/full/!300,300/0/default.jpg"); got != "HIT memory" {
		t.Errorf("X-Cache %q after warming from the log", got)
	}
	if code := run(context.Background(), []string{"warm", "--server", base}, &out, &errOut); code != 2 {
		t.Errorf("nothing to warm: exit %d", code)
	}
	if code := run(context.Background(), []string{"warm", "--server", "ftp://x", "--id", "a"}, &out, &errOut); code != 2 {
		t.Errorf("bad server: exit %d", code)
	}
}
