package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source"
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

// TestImageKeys: a bucket's keys become what a folder walk finds: images,
// and each tile pyramid once (not its tiles, nor a pyramid inside it);
// hidden keys and other files are left out.
func TestImageKeys(t *testing.T) {
	keys := []string{
		"a.jpg", "b.txt", ".hidden.jpg", "d/.x/y.tif", "d/e.TIF",
		"p/info.json", "p/full/max/0/default.jpg", "p/q/info.json", "p/q/0,0,1,1/1,/0/default.jpg",
		"info.json", "z/photo.jp2",
		"3972/b1/3972b16287e5/info.json", "3972/b1/3972b16287e5/full/1,/0/default.jpg",
	}
	want := []string{"3972/b1/3972b16287e5", "a.jpg", "d/e.TIF", "p", "z/photo.jp2"}
	if got := imageKeys(keys); !slices.Equal(got, want) {
		t.Errorf("imageKeys = %q, want %q", got, want)
	}
}

// imageKeys runs keys, in any order, through an imageLister as a
// bucket's listing, and returns what it passes on, sorted.
func imageKeys(keys []string) []string {
	keys = slices.Sorted(slices.Values(keys))
	var out []string
	l := newImageLister(func(k string) { out = append(out, k) })
	for _, k := range keys {
		l.add(k)
	}
	l.done()
	slices.Sort(out)
	return out
}

// wholeImageKeys is what imageKeys does, from the whole key list at once,
// as check did before it listed a bucket a page at a time: the reference
// the lister must agree with.
func wholeImageKeys(keys []string) []string {
	pyramids := map[string]bool{}
	for _, k := range keys {
		if dir, ok := strings.CutSuffix(k, "/info.json"); ok && source.ValidKey(dir) {
			pyramids[dir] = true
		}
	}
	inPyramid := func(k string) bool {
		for i := strings.IndexByte(k, '/'); i >= 0; i = next(k, i) {
			if pyramids[k[:i]] {
				return true
			}
		}
		return false
	}
	var out []string
	for _, k := range keys {
		if !source.ValidKey(k) || resolve.Hidden(k) || inPyramid(k) {
			continue
		}
		if resolve.HasImageExtension(k) {
			out = append(out, k)
		}
	}
	for dir := range pyramids {
		if !resolve.Hidden(dir) && !inPyramid(dir) {
			out = append(out, dir)
		}
	}
	slices.Sort(out)
	return out
}

// TestImageListerAgrees: on random buckets of folders, images, pyramids
// (nested, hidden, beside files of the same name) and other files, the
// lister picks exactly what the whole key list gave.
func TestImageListerAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	names := []string{"a", "b", "p", "p.tif", "p-2", "full", "info.json", "0,0,1,1", ".h", "z", "x.jpg", "y.txt", "img.png", "q"}
	for round := range 300 {
		set := map[string]bool{}
		for range 1 + rng.IntN(60) {
			depth := 1 + rng.IntN(4)
			parts := make([]string, depth)
			for i := range parts {
				parts[i] = names[rng.IntN(len(names))]
			}
			set[strings.Join(parts, "/")] = true
		}
		keys := slices.Sorted(maps.Keys(set))
		if got, want := imageKeys(keys), wholeImageKeys(keys); !slices.Equal(got, want) {
			t.Fatalf("round %d, keys %q:\nlister %q\nwhole  %q", round, keys, got, want)
		}
	}
}

// TestImageListerBounded lists a bucket of 200 tile pyramids of 500
// tiles each, and 200 images: the lister holds at most one pyramid's
// tiles and the images at any time, not the 100,000 keys.
func TestImageListerBounded(t *testing.T) {
	var keys []string
	for p := range 200 {
		dir := fmt.Sprintf("coll/%03d", p)
		keys = append(keys, dir+".jpg", dir+"/info.json")
		for i := range 500 {
			keys = append(keys, fmt.Sprintf("%s/%d,0,256,256/256,/0/default.jpg", dir, i*256))
		}
	}
	slices.Sort(keys)
	n := 0
	l := newImageLister(func(string) { n++ })
	for _, k := range keys {
		l.add(k)
	}
	l.done()
	if n != 400 {
		t.Errorf("%d images, want 400 (200 files, 200 pyramids)", n)
	}
	if l.most > 500+400 {
		t.Errorf("%d keys held at once, of %d listed; want at most a pyramid's tiles and the images", l.most, len(keys))
	}
	t.Logf("%d keys listed, at most %d held", len(keys), l.most)
}
