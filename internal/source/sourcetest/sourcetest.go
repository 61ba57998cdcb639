// Package sourcetest is the conformance suite that every source backend
// runs against a real instance of its store: open, size, ranged reads at
// the start, middle and end, not-found, versions and concurrent reads.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/source"
)

// Factory stores files (key → bytes) in a fresh store and returns a source
// over it. Calling it again with changed files must change versions.
type Factory func(t *testing.T, files map[string][]byte) source.Source

// Options describe what a backend cannot do.
type Options struct {
	// Unlisted backends (HTTP origins) cannot list a folder: Siblings
	// must return nothing, without an error.
	Unlisted bool
}

// Run runs the suite.
func Run(t *testing.T, newSource Factory) { RunWith(t, newSource, Options{}) }

// RunWith runs the suite for a backend with opt's limits.
func RunWith(t *testing.T, newSource Factory, opt Options) {
	big := make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	files := map[string][]byte{
		"a.jpg":          []byte("hello, world"),
		"dir/sub/b.tif":  big,
		"dir/sub/b.png":  []byte("png"),
		"dir/empty.webp": {},
	}
	src := newSource(t, files)
	ctx := context.Background()

	t.Run("OpenAndSize", func(t *testing.T) {
		for key, want := range files {
			obj, err := src.Open(ctx, key)
			if err != nil {
				t.Fatalf("Open(%q): %v", key, err)
			}
			if obj.Size != int64(len(want)) {
				t.Errorf("%s: Size %d, want %d", key, obj.Size, len(want))
			}
			if obj.Key != key {
				t.Errorf("%s: Key %q", key, obj.Key)
			}
			if obj.Version == "" {
				t.Errorf("%s: empty Version", key)
			}
			obj.Close()
		}
	})

	t.Run("RangedReads", func(t *testing.T) {
		obj, err := src.Open(ctx, "dir/sub/b.tif")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		for _, r := range []struct{ off, n int64 }{
			{0, 16}, {1 << 20, 4096}, {int64(len(big)) - 100, 100}, {12345, 1},
			{4000, 70000}, {2 << 20, 1<<20 + 5}, {0, int64(len(big))},
		} {
			buf := make([]byte, r.n)
			n, err := obj.ReadAt(buf, r.off)
			if err != nil && !(errors.Is(err, io.EOF) && int64(n) == r.n) {
				t.Fatalf("ReadAt(%d, %d): %v", r.off, r.n, err)
			}
			if !bytes.Equal(buf[:n], big[r.off:r.off+r.n]) {
				t.Errorf("ReadAt(%d, %d): wrong bytes", r.off, r.n)
			}
		}
		// Reading past the end returns what there is and io.EOF.
		buf := make([]byte, 200)
		n, err := obj.ReadAt(buf, int64(len(big))-50)
		if n != 50 || !errors.Is(err, io.EOF) {
			t.Errorf("read over the end: n=%d err=%v, want 50, EOF", n, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, key := range []string{"missing.jpg", "dir/sub", "dir/sub/missing.tif", "a.jpg/x"} {
			obj, err := src.Open(ctx, key)
			if err == nil {
				obj.Close()
				t.Errorf("Open(%q) succeeded", key)
			} else if !errors.Is(err, source.ErrNotFound) {
				t.Errorf("Open(%q): %v, want ErrNotFound", key, err)
			}
		}
	})

	t.Run("Siblings", func(t *testing.T) {
		got, err := src.Siblings(ctx, "dir/sub/b")
		if err != nil {
			t.Fatal(err)
		}
		if opt.Unlisted {
			if len(got) != 0 {
				t.Errorf("Siblings of an unlisted store: %v", got)
			}
			return
		}
		want := map[string]bool{"dir/sub/b.tif": true, "dir/sub/b.png": true}
		if len(got) != len(want) {
			t.Fatalf("Siblings: %v", got)
		}
		for _, k := range got {
			if !want[k] {
				t.Errorf("unexpected sibling %q", k)
			}
		}
		if got, _ := src.Siblings(ctx, "nothing/here"); len(got) != 0 {
			t.Errorf("Siblings of a missing folder: %v", got)
		}
	})

	t.Run("VersionChanges", func(t *testing.T) {
		changed := map[string][]byte{"a.jpg": []byte("hello, world, again")}
		src2 := newSource(t, changed)
		o1, err := src.Open(ctx, "a.jpg")
		if err != nil {
			t.Fatal(err)
		}
		defer o1.Close()
		o2, err := src2.Open(ctx, "a.jpg")
		if err != nil {
			t.Fatal(err)
		}
		defer o2.Close()
		if o1.Version == o2.Version {
			t.Errorf("changed content kept version %q", o1.Version)
		}
	})

	t.Run("ConcurrentReads", func(t *testing.T) {
		obj, err := src.Open(ctx, "dir/sub/b.tif")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 7))
				buf := make([]byte, 8192)
				for i := 0; i < 50; i++ {
					off := rng.Int64N(int64(len(big) - len(buf)))
					if _, err := obj.ReadAt(buf, off); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(buf, big[off:off+int64(len(buf))]) {
						errs <- errors.New("wrong bytes under concurrency")
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("EmptyAndSmall", func(t *testing.T) {
		for key, want := range map[string][]byte{"dir/empty.webp": {}, "a.jpg": files["a.jpg"]} {
			obj, err := src.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(want)+10)
			n, err := obj.ReadAt(buf, 0)
			if n != len(want) || !errors.Is(err, io.EOF) || !bytes.Equal(buf[:n], want) {
				t.Errorf("%s: whole read n=%d err=%v", key, n, err)
			}
			obj.Close()
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if obj, err := src.Open(cctx, "a.jpg"); err == nil {
			obj.Close()
			t.Error("Open with a cancelled context succeeded")
		}
	})
}

// ReadEventually reads len(want) bytes at off from r until a read
// succeeds, within the given time, and checks them: a store that was
// down serves again as soon as it is back.
func ReadEventually(t *testing.T, r io.ReaderAt, off int64, want []byte, within time.Duration) {
	t.Helper()
	buf := make([]byte, len(want))
	deadline := time.Now().Add(within)
	for {
		_, err := r.ReadAt(buf, off)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store back, reads still fail: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !bytes.Equal(buf, want) {
		t.Error("wrong bytes after recovery")
	}
}
