package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/samples"
)

// workerEnv makes the test binary, started by `iiifd ingest` as its
// worker, run the command line it is given instead of the tests.
const workerEnv = "IIIFD_CMD_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Setenv(workerEnv, "1") // for the children only
	os.Exit(m.Run())
}

func ingestSource(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "src.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestIngest(t *testing.T) {
	src := ingestSource(t, 900, 700)
	dir := t.TempDir()

	var stdout, stderr bytes.Buffer
	dst := filepath.Join(dir, "out.tif")
	code := run(context.Background(), []string{"ingest", "--tile-size", "256", "--quality", "80", src, dst}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "written") {
		t.Fatalf("ptiff: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	// Not a terminal: plain progress lines, ending at 100 %.
	if !strings.Contains(stderr.String(), "ingest: 100%") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("progress on a non-terminal: %q", stderr.String())
	}
	data, err := os.ReadFile(dst)
	if err != nil || !bytes.HasPrefix(data, []byte("II*\x00")) {
		t.Fatalf("output is not a TIFF: %v", err)
	}

	stdout.Reset()
	stderr.Reset()
	tiles := filepath.Join(dir, "tiles")
	code = run(context.Background(), []string{"ingest", "--format", "tiles", "--quiet", src, tiles}, &stdout, &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("tiles: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(tiles, "info.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tiles, "0,0,512,512", "512,512", "0", "default.jpg")); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); strings.Join(got, " ") != "out.tif tiles" {
		t.Errorf("directory holds %v", got)
	}
}

func TestIngestFailures(t *testing.T) {
	src := ingestSource(t, 300, 200)
	data, _ := os.ReadFile(src)
	trunc := filepath.Join(t.TempDir(), "trunc.png")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	// A JPEG cut at 5000 bytes crashed the worker's save part-way
	// (issue 14 item 8); it is refused by a decode pass before.
	julia, err := fs.ReadFile(samples.FS(), "julia.jpg")
	if err != nil {
		t.Fatal(err)
	}
	truncJPEG := filepath.Join(t.TempDir(), "t.jpg")
	os.WriteFile(truncJPEG, julia[:5000], 0o644)
	text := filepath.Join(t.TempDir(), "notes.jpg")
	os.WriteFile(text, []byte("not an image"), 0o644)

	for _, tc := range []struct {
		name   string
		args   []string // DST is appended
		code   int
		output string
	}{
		{"help", []string{"-h"}, 0, "level-0 layout"},
		{"no arguments", nil, 2, "want SRC and DST"},
		{"bad flag", []string{"--frobnicate", src}, 2, "frobnicate"},
		{"tile size", []string{"--tile-size", "300", src}, 2, "tile size 300"},
		{"quality", []string{"--quality", "0", src}, 2, "quality"},
		{"format", []string{"--format", "zip", src}, 2, "unknown format"},
		{"compression", []string{"--compression", "lzw", src}, 2, "unknown compression"},
		{"missing", []string{filepath.Join(t.TempDir(), "nope.png")}, 1, "no such file"},
		{"not an image", []string{text}, 1, "could not be decoded"},
		{"truncated", []string{trunc}, 1, "could not be decoded"},
		{"truncated tiles", []string{"--format", "tiles", trunc}, 1, "could not be decoded"},
		{"truncated jpeg", []string{truncJPEG}, 1, "could not be decoded: it is truncated"},
		{"exists", []string{src, "EXISTS"}, 1, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			existing := filepath.Join(dir, "existing")
			os.WriteFile(existing, []byte("keep"), 0o644)
			args := append([]string{"ingest"}, tc.args...)
			if tc.name != "no arguments" && tc.name != "help" {
				if args[len(args)-1] == "EXISTS" {
					args[len(args)-1] = existing
				} else {
					args = append(args, filepath.Join(dir, "out"))
				}
			}
			var out bytes.Buffer
			code := run(context.Background(), args, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.output) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.output, out.String())
			}
			if code == 1 {
				// One line of error, naming no temporary file, after any
				// progress lines.
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				last := lines[len(lines)-1]
				if !strings.HasPrefix(last, "iiifd ingest: ") || strings.Contains(out.String(), ".tmp-") ||
					strings.Contains(out.String(), "goroutine") || strings.Contains(out.String(), "crashed") {
					t.Errorf("output: %q", out.String())
				}
			}
			if got := entries(t, dir); len(got) != 1 || got[0] != "existing" {
				t.Errorf("directory holds %v", got)
			}
			if data, _ := os.ReadFile(existing); string(data) != "keep" {
				t.Error("an existing file was changed")
			}
		})
	}
}

// cancelOnProgress is a stderr that cancels the run once a progress line
// shows the ingest under way.
type cancelOnProgress struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
	at     time.Time
}

func (c *cancelOnProgress) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() && bytes.Contains(p, []byte("ingest: 10%")) {
		c.at = time.Now()
		c.cancel()
	}
	return c.buf.Write(p)
}

func TestIngestInterrupted(t *testing.T) {
	if _, err := exec.LookPath("vips"); err != nil {
		t.Skip("the vips command is not installed")
	}
	big := filepath.Join(t.TempDir(), "big.jpg")
	if out, err := exec.Command("vips", "black", big, "20000", "20000", "--bands", "3").CombinedOutput(); err != nil {
		t.Fatalf("vips black: %v\n%s", err, out)
	}
	for _, format := range []string{"ptiff", "tiles"} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		stderr := &cancelOnProgress{cancel: cancel}
		code := run(ctx, []string{"ingest", "--format", format, big, filepath.Join(dir, "out")}, &bytes.Buffer{}, stderr)
		cancel()
		stderr.mu.Lock()
		out, at := stderr.buf.String(), stderr.at
		stderr.mu.Unlock()
		if at.IsZero() {
			t.Fatalf("%s: finished before it could be interrupted: exit %d\n%s", format, code, out)
		}
		if code != 130 || !strings.Contains(out, "interrupted") {
			t.Errorf("%s: exit %d\n%s", format, code, out)
		}
		if d := time.Since(at); d > 3*time.Second {
			t.Errorf("%s: returned %v after the interruption", format, d)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Errorf("%s: left behind %v", format, got)
		}
	}
}
