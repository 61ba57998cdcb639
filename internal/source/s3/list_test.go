package s3

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source"
)

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
	l := newImageLister(resolve.HasImageExtension, func(k string) { out = append(out, k) })
	for _, k := range keys {
		l.add(k)
	}
	l.done()
	slices.Sort(out)
	return out
}

// wholeImageKeys is what imageKeys does, from the whole key list at once,
// as iiifd check did before it listed a bucket a page at a time: the reference
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
	l := newImageLister(resolve.HasImageExtension, func(string) { n++ })
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
