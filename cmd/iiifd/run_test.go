package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/samples"
)

// TestServeEmbeddedDefault is the README's first command as a new user
// meets it: no root, no configuration, the sample images served; then a
// graceful stop that exits 0.
func TestServeEmbeddedDefault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0"}, io.Discard, &stderr, func(a net.Addr) { addrc <- a })
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
	for _, id := range []string{"mandelbrot", "julia", "testchart", "zoneplate"} {
		res, err := http.Get(base + "/iiif/3/" + id + "/info.json")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Width, Height int }
		json.NewDecoder(res.Body).Decode(&info)
		res.Body.Close()
		if res.StatusCode != 200 || info.Width == 0 {
			t.Errorf("%s: status %d, info %+v", id, res.StatusCode, info)
		}
		res, err = http.Get(base + "/iiif/3/" + id + "/full/!256,256/0/default.jpg")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s thumbnail: status %d", id, res.StatusCode)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after shutdown: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(stderr.String(), "embedded sample images") {
		t.Errorf("the log does not say it serves the samples: %s", stderr.String())
	}
}

func TestRunCommands(t *testing.T) {
	cases := []struct {
		args    []string
		code    int
		out     string // in stdout or stderr
		withEnv map[string]string
	}{
		{[]string{"help"}, 0, "iiifd serve", nil},
		{[]string{"version"}, 0, "iiifd", nil},
		{[]string{"frobnicate"}, 2, "unknown command", nil},
		{[]string{"serve", "-h"}, 0, "-max-width", nil},
		{[]string{"help", "serve"}, 0, "IIIFD_", nil},
		{[]string{"serve", "--no-such-flag"}, 2, "no-such-flag", nil},
		{[]string{"serve", "--tile-size", "1"}, 2, "tile-size", nil},
		{[]string{"serve", "extra"}, 2, "unexpected", nil},
		{[]string{"serve", "--prefetch-per-render", "lots"}, 2, "prefetch-per-render", nil},
		{[]string{"serve", "--memory-limit", "1GiB", "--prefetch-memory", "2GiB"}, 2, "prefetch-memory", nil},
		{[]string{"serve", "--root", "/does/not/exist", "--addr", "127.0.0.1:0"}, 1, "root", nil},
		{[]string{"serve", "--addr", "127.0.0.1:0"}, 2, "IIIFD_MAX_AREA", map[string]string{"IIIFD_MAX_AREA": "lots"}},
		{[]string{"samples"}, 2, "usage: iiifd samples DIR", nil},
		{[]string{"samples", "/dev/null/x"}, 1, "iiifd samples:", nil},
	}
	for _, tc := range cases {
		for k, v := range tc.withEnv {
			t.Setenv(k, v)
		}
		var out bytes.Buffer
		code := run(context.Background(), tc.args, &out, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("run %v: exit %d, want %d; output %q lacks %q", tc.args, code, tc.code, out.String(), tc.out)
		}
		for k := range tc.withEnv {
			os.Unsetenv(k)
		}
	}
}

// TestSamplesCommand: iiifd samples DIR writes the embedded samples, byte
// for byte, into DIR.
func TestSamplesCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"samples", dir}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	want, _ := fs.ReadDir(samples.FS(), ".")
	got, _ := os.ReadDir(dir)
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d files written, want %d", len(got), len(want))
	}
	for _, e := range want {
		a, _ := fs.ReadFile(samples.FS(), e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %v, or its bytes differ", e.Name(), err)
		}
	}
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "iiifd.toml")
	os.WriteFile(cfg, []byte("addr = \"127.0.0.1:0\"\nmax-width = 300\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--config", cfg}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var a net.Addr
	select {
	case a = <-addrc:
	case code := <-done:
		t.Fatalf("exit %d", code)
	}
	res, err := http.Get("http://" + a.String() + "/iiif/3/julia/info.json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ MaxWidth int }
	json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if info.MaxWidth != 300 {
		t.Errorf("maxWidth from the config file: %d", info.MaxWidth)
	}
	cancel()
	<-done
}

// TestGracefulShutdown stops the server while a request is in flight: the
// request completes with its whole body, /readyz turns 503 during the
// drain delay, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--drain-delay", "300ms"}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	base := "http://" + (<-addrc).String()
	if res, err := http.Get(base + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz before shutdown: %v %v", res, err)
	}
	type result struct {
		status int
		n      int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		res, err := http.Get(base + "/iiif/3/julia/full/max/33/default.png")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		inflight <- result{res.StatusCode, len(b), err}
	}()
	time.Sleep(30 * time.Millisecond) // let the request start
	// A second connection made before the drain ends sees "not ready".
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	cancel()
	time.Sleep(50 * time.Millisecond)
	if res, err := c.Get(base + "/readyz"); err != nil || res.StatusCode != 503 {
		t.Errorf("readyz while draining: %v %v", res, err)
	}
	r := <-inflight
	if r.err != nil || r.status != 200 || r.n < 1000 {
		t.Errorf("in-flight request: %+v", r)
	}
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestAdminAddr: pprof is served on the admin address only.
func TestAdminAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--admin-addr", admin}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var main net.Addr
	select {
	case main = <-addrc:
	case code := <-done:
		t.Fatalf("exit %d", code)
	}
	status := func(u string) int {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if s := status("http://" + admin + "/debug/pprof/"); s != 200 {
		t.Errorf("pprof on the admin address: %d", s)
	}
	if s := status("http://" + admin + "/metrics"); s != 200 {
		t.Errorf("metrics on the admin address: %d", s)
	}
	if s := status("http://" + main.String() + "/debug/pprof/"); s != 404 {
		t.Errorf("pprof on the public address: %d", s)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}
