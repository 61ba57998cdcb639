package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/source"
)

func TestList(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"a.jpg", "b.txt", "sub/c.tif", "sub/deeper/d.png", ".hidden.jpg", ".uploads/e.jpg",
		"pyr/info.json", "pyr/0,0,256,256/256,/0/default.jpg", "sub/.x/f.jpg",
	} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.jpg")); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	images := func(k string) bool { return !strings.HasSuffix(k, ".txt") }
	tests := []struct {
		name  string
		limit int
		keep  func(string) bool
		want  string
		trunc bool
	}{
		{"all", 100, nil, "a.jpg b.txt pyr/ sub/c.tif sub/deeper/d.png", false},
		{"images", 100, images, "a.jpg pyr/ sub/c.tif sub/deeper/d.png", false},
		{"bounded", 2, images, "a.jpg pyr/", true},
		{"unbounded", 0, images, "a.jpg pyr/ sub/c.tif sub/deeper/d.png", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(context.Background(), tc.limit, tc.keep)
			if tc.trunc != errors.Is(err, source.ErrListTruncated) || (err != nil && !tc.trunc) {
				t.Fatalf("err %v, want truncated %v", err, tc.trunc)
			}
			var keys []string
			for _, e := range got {
				k := e.Key
				if e.Pyramid {
					k += "/"
				}
				keys = append(keys, k)
			}
			if s := strings.Join(keys, " "); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}
