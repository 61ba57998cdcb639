package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/samples"
)

func TestCheck(t *testing.T) {
	root := t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", "--root", root, "--jobs", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("a healthy collection: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "checked 4 images") || !strings.Contains(out.String(), "0 failed") {
		t.Errorf("summary: %s", out.String())
	}

	// Broken files are reported with a reason, and the exit is 1.
	os.WriteFile(filepath.Join(root, "empty.jpg"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "text.tif"), []byte("not a tiff at all, just text"), 0o644)
	good, _ := os.ReadFile(filepath.Join(root, "julia.jpg"))
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "sub", "cut.jpg"), good[:len(good)/3], 0o644)
	os.WriteFile(filepath.Join(root, ".hidden.jpg"), nil, 0o644)
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"check", "--root", root}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{"FAIL empty.jpg:", "FAIL text.tif:", "FAIL sub/cut.jpg:", "checked 7 images", "3 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), ".hidden") {
		t.Errorf("hidden file checked:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "100%") {
		t.Errorf("no progress on stderr: %q", errOut.String())
	}
	if code := run(context.Background(), []string{"check", "--jobs", "0"}, &out, &errOut); code != 2 {
		t.Errorf("--jobs 0: exit %d", code)
	}
}

// TestReason: an operator sees the cause of a fault and what wrapped it
// (which part of an upload, which file), not only the public message.
func TestReason(t *testing.T) {
	fe := fault.Wrap(fault.Unavailable, errors.New("dial tcp: connection refused"), "the image store cannot be reached")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fe, "the image store cannot be reached: dial tcp: connection refused"},
		{fmt.Errorf("upload of x: part 2 of 6: %w", fe), "upload of x: part 2 of 6: the image store cannot be reached: dial tcp: connection refused"},
		{errors.New("plain\nerror"), "plain error"},
	} {
		if got := reason(tc.err); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
