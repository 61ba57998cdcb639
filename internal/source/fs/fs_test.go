package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/sourcetest"
)

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for k, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	n := 0
	sourcetest.Run(t, func(t *testing.T, files map[string][]byte) source.Source {
		dir := t.TempDir()
		writeTree(t, dir, files)
		// Give each store distinct modification times so versions differ
		// even where a file system's clock is coarse.
		n++
		stamp := time.Unix(1_700_000_000+int64(n), 0)
		for k := range files {
			os.Chtimes(filepath.Join(dir, filepath.FromSlash(k)), stamp, stamp)
		}
		s, err := New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConfinement tries every way out of the root: parent segments,
// absolute paths, NUL and links that lead outside (to a file and to a
// folder). None may open, and all look like "not found".
func TestConfinement(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"secret.jpg": []byte("secret"), "d/s.jpg": []byte("s")})
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{"ok.jpg": []byte("ok"), "sub/in.jpg": []byte("in")})
	must(t, os.Symlink(filepath.Join(outside, "secret.jpg"), filepath.Join(root, "link.jpg")))
	must(t, os.Symlink(filepath.Join(outside, "d"), filepath.Join(root, "dirlink")))
	must(t, os.Symlink("sub/in.jpg", filepath.Join(root, "inside-link.jpg")))
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		"../" + filepath.Base(outside) + "/secret.jpg", "sub/../../secret.jpg", "/etc/passwd",
		outside + "/secret.jpg", "link.jpg", "dirlink/s.jpg", "ok.jpg\x00.png", "sub\\..\\ok.jpg",
		"./ok.jpg", "sub//in.jpg", "", ".", "..",
	} {
		obj, err := s.Open(ctx, key)
		if err == nil {
			obj.Close()
			t.Errorf("Open(%q) escaped the root", key)
			continue
		}
		if !errors.Is(err, source.ErrNotFound) {
			t.Errorf("Open(%q): %v, want ErrNotFound", key, err)
		}
	}
	obj, err := s.Open(ctx, "inside-link.jpg")
	if err != nil {
		t.Fatalf("a link inside the root must work: %v", err)
	}
	obj.Close()
	if sib, _ := s.Siblings(ctx, "dirlink/s"); len(sib) != 0 {
		t.Errorf("Siblings followed a link out: %v", sib)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing root accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(f, nil, 0o644))
	if _, err := New(f); err == nil {
		t.Error("a file accepted as root")
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a.jpg": true, "a/b/c.tif": true, "ünïcode name.png": true,
		"": false, "/a": false, "a/": false, "a//b": false, "../a": false, "a/..": false,
		"./a": false, "a\\b": false, "a\x00b": false, "a\nb": false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
