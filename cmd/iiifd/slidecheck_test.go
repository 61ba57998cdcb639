package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/slidetest"
)

// TestServeCrashingSlide serves the generated slides with `iiifd serve`
// as shipped, the check's child being this program (the test binary runs
// run as the child, see TestMain): the slide that crashes OpenSlide
// answers a 500 naming the crash, the server stays up and serves the
// sound slides read by OpenSlide, pixels included.
func TestServeCrashingSlide(t *testing.T) {
	dir := slidetest.Dir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--root", dir, "--log-level", "error"}, io.Discard, &stderr,
			func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for range 2 {
		if code, body := get("/iiif/3/crash.bif/info.json"); code != 500 || !strings.Contains(body, "crashed OpenSlide") {
			t.Errorf("crash.bif: %d %q, want a 500 naming the crash", code, body)
		}
	}
	for _, path := range []string{"/iiif/3/ventana.bif/0,0,512,512/256,/0/default.jpg", "/iiif/3/slide.ndpi/info.json",
		"/iiif/3/philips.tiff;label/full/max/0/default.png", "/iiif/3/vms%2Fslide.vms/1000,700,400,400/200,/0/default.jpg",
		"/iiif/3/vms%2Fslide.vms;macro/full/max/0/default.jpg", "/healthz"} {
		if code, body := get(path); code != 200 {
			t.Errorf("%s after the crash: %d %q", path, code, body)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
}
