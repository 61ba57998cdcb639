package route

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"maps/*", "maps/a.tif", true},
		{"maps/*", "maps/1850/a.tif", false},
		{"maps/**", "maps/1850/a.tif", true},
		{"maps/**", "maps", false},
		{"*.jp2", "x.jp2", true},
		{"*.jp2", "d/x.jp2", false},
		{"**.jp2", "d/x.jp2", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"exact.tif", "exact.tif", true},
		{"exact.tif", "exact.tiff", false},
		{"**", "", true},
		{"*", "a/b", false},
	} {
		if got := Match(tc.pattern, tc.key); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pattern, tc.key, got)
		}
	}
}

func TestLayout(t *testing.T) {
	l, err := ParseLayout("hash:4,2")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"3972b16287e5":           "3972/b1/3972b16287e5",
		"3972b16287e5.tif":       "3972/b1/3972b16287e5.tif",
		"3972b16287e5/info.json": "3972/b1/3972b16287e5/info.json",
		"abc":                    "abc",
		"ab/cdefgh.tif":          "ab/cdefgh.tif",
	} {
		if got := l.Key(key); got != want {
			t.Errorf("Key(%q) = %q, want %q", key, got, want)
		}
		if back := l.Unkey(l.Key(key)); back != key {
			t.Errorf("Unkey(Key(%q)) = %q", key, back)
		}
	}
	for _, bad := range []string{"hash:", "hash:0", "hash:a", "prefix:2", "hash:17", "hash:1,1,1,1,1,1,1,1,1"} {
		if _, err := ParseLayout(bad); err == nil {
			t.Errorf("ParseLayout(%q) accepted", bad)
		}
	}
	for _, good := range []string{"", "flat", "hash:2", "hash:4,2"} {
		l, err := ParseLayout(good)
		if err != nil {
			t.Errorf("ParseLayout(%q): %v", good, err)
		}
		if l2, _ := ParseLayout(l.String()); !slices.Equal(l.Widths, l2.Widths) {
			t.Errorf("%q does not round-trip", good)
		}
	}
}

func tree(t *testing.T, files ...string) *fs.FS {
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRouterAndLayout(t *testing.T) {
	maps := tree(t, "maps/a.tif", "maps/b.jpg")
	hashed := tree(t, "3972/b1/3972b16287e5.tif", "3972/b1/3972b16287e5/info.json")
	other := tree(t, "c.png", "maps/hidden.tif")
	r, err := NewRouter([]Rule{
		{Pattern: "maps/**", Source: maps},
		{Pattern: "3972*", Source: WithLayout(hashed, Layout{Widths: []int{4, 2}})},
	}, other)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, want := range map[string]string{
		"maps/a.tif":             "maps/a.tif",
		"c.png":                  "c.png",
		"3972b16287e5.tif":       "3972/b1/3972b16287e5.tif",
		"3972b16287e5/info.json": "",
	} {
		obj, err := r.Open(ctx, key)
		if want == "" {
			if !errors.Is(err, source.ErrNotFound) {
				t.Errorf("Open(%q): %v, want not found (pattern * stops at /)", key, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Open(%q): %v", key, err)
		}
		b := make([]byte, obj.Size)
		obj.ReadAt(b, 0)
		if string(b) != want || obj.Key != key {
			t.Errorf("Open(%q) read %q (key %q)", key, b, obj.Key)
		}
		obj.Close()
	}
	if _, err := r.Open(ctx, "maps/hidden.tif"); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("a key matching a rule was looked up in the fallback: %v", err)
	}
	if got, _ := r.Siblings(ctx, "3972b16287e5"); !slices.Equal(got, []string{"3972b16287e5.tif"}) {
		t.Errorf("Siblings through the layout: %v", got)
	}
	if got, _ := r.Siblings(ctx, "maps/a"); !slices.Equal(got, []string{"maps/a.tif"}) {
		t.Errorf("Siblings through a rule: %v", got)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("maps/**", "maps/a/b.tif")
	f.Add("*a*b*", "xaybz")
	f.Fuzz(func(t *testing.T, pattern, key string) {
		if ValidPattern(pattern) != nil || len(key) > 256 {
			return
		}
		Match(pattern, key)
		if !Match(pattern, key) && pattern == key {
			t.Errorf("%q does not match itself", key)
		}
	})
}

func FuzzLayout(f *testing.F) {
	f.Add("hash:4,2", "3972b16287e5.tif")
	f.Fuzz(func(t *testing.T, spec, key string) {
		l, err := ParseLayout(spec)
		if err != nil || !source.ValidKey(key) {
			return
		}
		stored := l.Key(key)
		if !source.ValidKey(stored) {
			t.Errorf("Key(%q) = %q is not a valid key", key, stored)
		}
		if back := l.Unkey(stored); back != key {
			t.Errorf("Unkey(Key(%q)) = %q", key, back)
		}
	})
}
