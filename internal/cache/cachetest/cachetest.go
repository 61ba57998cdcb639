// Package cachetest is the conformance suite that every cache.Tier
// implementation runs in its own tests.
package cachetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
)

// Options describes the tier under test.
type Options struct {
	// New returns a fresh, empty tier large enough for every test but the
	// size bound test (at least 64 MiB, or MaxEntry per entry).
	New func(t *testing.T) cache.Tier
	// NewBounded returns a fresh, empty tier bounded to maxBytes with LRU
	// eviction, storing entries of at least maxBytes/16. Nil skips the size
	// bound tests (a tier bounded by its backend, such as Redis).
	NewBounded func(t *testing.T, maxBytes int64) cache.Tier
	// MaxEntry is the largest body the tier stores, or 0 for no limit.
	MaxEntry int64
	// Settle, if set, is called before checking the effect of eviction, for
	// tiers that evict in the background.
	Settle func(t *testing.T, tier cache.Tier)
}

// Body returns the deterministic body of key at length n, so that any hit
// can be checked for integrity.
func Body(key cache.Key, n int) []byte {
	seed := sha256.Sum256([]byte(key.ID + "\x00" + key.Name))
	out := make([]byte, n)
	for i := 0; i < n; i += len(seed) {
		copy(out[i:], seed[:])
		seed = sha256.Sum256(seed[:])
	}
	return out
}

// Meta returns test metadata for key.
func Meta(key cache.Key) cache.Meta {
	return cache.Meta{
		ContentType:  "image/jpeg",
		ETag:         `"` + key.Name + `"`,
		LastModified: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
}

// Put writes body under key in chunks and commits it.
func Put(t testing.TB, tier cache.Tier, key cache.Key, body []byte) error {
	t.Helper()
	w, err := tier.Create(context.Background(), key)
	if err != nil {
		return err
	}
	for len(body) > 0 {
		n := min(len(body), 32<<10)
		if _, err := w.Write(body[:n]); err != nil {
			w.Abort()
			return err
		}
		body = body[n:]
	}
	return w.Commit(Meta(key))
}

// Read returns the body of key and whether it was a hit; it fails the test
// on faults other than a miss.
func Read(t testing.TB, tier cache.Tier, key cache.Key) ([]byte, *cache.Hit, bool) {
	t.Helper()
	h, err := tier.Get(context.Background(), key)
	if errors.Is(err, cache.ErrMiss) {
		return nil, nil, false
	}
	if err != nil {
		t.Fatalf("Get(%v): %v", key, err)
	}
	defer h.Body.Close()
	b, err := io.ReadAll(h.Body)
	if err != nil {
		t.Fatalf("reading %v: %v", key, err)
	}
	if int64(len(b)) != h.Size {
		t.Fatalf("%v: read %d bytes, Size says %d", key, len(b), h.Size)
	}
	return b, h, true
}

func mustHit(t *testing.T, tier cache.Tier, key cache.Key, want []byte) {
	t.Helper()
	got, h, ok := Read(t, tier, key)
	if !ok {
		t.Fatalf("Get(%v): miss, want hit", key)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%v): body differs (%d bytes, want %d)", key, len(got), len(want))
	}
	m := Meta(key)
	if h.ContentType != m.ContentType || h.ETag != m.ETag || !h.LastModified.Equal(m.LastModified) {
		t.Fatalf("Get(%v): meta %+v, want %+v", key, h.Meta, m)
	}
	if h.Tier != tier.Name() {
		t.Fatalf("Get(%v): Tier %q, want %q", key, h.Tier, tier.Name())
	}
}

func mustMiss(t *testing.T, tier cache.Tier, key cache.Key) {
	t.Helper()
	if _, _, ok := Read(t, tier, key); ok {
		t.Fatalf("Get(%v): hit, want miss", key)
	}
}

func mustPut(t *testing.T, tier cache.Tier, key cache.Key, body []byte) {
	t.Helper()
	if err := Put(t, tier, key, body); err != nil {
		t.Fatalf("Put(%v): %v", key, err)
	}
}

// Run runs the conformance suite.
func Run(t *testing.T, o Options) {
	k := func(id, name string) cache.Key { return cache.Key{ID: id, Name: name} }

	t.Run("MissThenHit", func(t *testing.T) {
		tier := o.New(t)
		key := k("a.tif", "full/max/0/default.jpg v1")
		mustMiss(t, tier, key)
		mustPut(t, tier, key, Body(key, 1000))
		mustHit(t, tier, key, Body(key, 1000))
		s := tier.Stats()
		if s.Hits < 1 || s.Misses < 1 || s.Puts < 1 {
			t.Fatalf("Stats %+v: want at least one hit, miss and put", s)
		}
	})

	t.Run("EmptyBodyAndOddKeys", func(t *testing.T) {
		tier := o.New(t)
		keys := []cache.Key{k("", ""), k("a/b/../c", "x\x00y"), k("ümlaut %2F", "/../../etc/passwd"), k("a", "b"), k("a\x00b", "")}
		for i, key := range keys {
			mustPut(t, tier, key, Body(key, i*7))
		}
		for i, key := range keys {
			mustHit(t, tier, key, Body(key, i*7))
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		tier := o.New(t)
		key := k("a", "n")
		mustPut(t, tier, key, []byte("first version"))
		mustPut(t, tier, key, Body(key, 500))
		mustHit(t, tier, key, Body(key, 500))
	})

	t.Run("Delete", func(t *testing.T) {
		tier := o.New(t)
		a, b := k("a", "1"), k("a", "2")
		mustPut(t, tier, a, Body(a, 100))
		mustPut(t, tier, b, Body(b, 100))
		if err := tier.Delete(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if err := tier.Delete(context.Background(), k("nothing", "here")); err != nil {
			t.Fatalf("Delete of a missing entry: %v", err)
		}
		mustMiss(t, tier, a)
		mustHit(t, tier, b, Body(b, 100))
	})

	t.Run("PurgeIdentifier", func(t *testing.T) {
		tier := o.New(t)
		var a, b []cache.Key
		for i := range 5 {
			a = append(a, k("img/a.tif", fmt.Sprint("tile ", i)))
			b = append(b, k("img/b.tif", fmt.Sprint("tile ", i)))
		}
		a = append(a, k("img/a.tif", "info.json"))
		for _, key := range append(append([]cache.Key{}, a...), b...) {
			mustPut(t, tier, key, Body(key, 300))
		}
		if err := tier.Purge(context.Background(), "img/a.tif"); err != nil {
			t.Fatal(err)
		}
		if err := tier.Purge(context.Background(), "never/seen"); err != nil {
			t.Fatalf("Purge of an unknown identifier: %v", err)
		}
		for _, key := range a {
			mustMiss(t, tier, key)
		}
		for _, key := range b {
			mustHit(t, tier, key, Body(key, 300))
		}
		// The identifier is usable again after a purge.
		mustPut(t, tier, a[0], Body(a[0], 10))
		mustHit(t, tier, a[0], Body(a[0], 10))
	})

	t.Run("Abort", func(t *testing.T) {
		tier := o.New(t)
		key := k("a", "aborted")
		w, err := tier.Create(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(Body(key, 5000))
		w.Abort()
		mustMiss(t, tier, key)
		// An abort does not disturb an earlier committed version.
		mustPut(t, tier, key, Body(key, 40))
		w, _ = tier.Create(context.Background(), key)
		w.Write([]byte("half"))
		w.Abort()
		mustHit(t, tier, key, Body(key, 40))
	})

	t.Run("InvisibleUntilCommit", func(t *testing.T) {
		tier := o.New(t)
		key := k("a", "slow")
		body := Body(key, 200<<10)
		w, err := tier.Create(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body[:len(body)/2])
		mustMiss(t, tier, key)
		w.Write(body[len(body)/2:])
		mustMiss(t, tier, key)
		if err := w.Commit(Meta(key)); err != nil {
			t.Fatal(err)
		}
		mustHit(t, tier, key, body)
	})

	t.Run("ConcurrentWritersOneKey", func(t *testing.T) {
		tier := o.New(t)
		key := k("a", "raced")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				w, err := tier.Create(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				body := Body(key, 64<<10)
				for j := 0; j < len(body); j += 4096 {
					w.Write(body[j : j+4096])
				}
				if i%3 == 0 {
					w.Abort()
					return
				}
				if err := w.Commit(Meta(key)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		mustHit(t, tier, key, Body(key, 64<<10))
	})

	t.Run("Concurrency", func(t *testing.T) {
		tier := o.New(t)
		ids := []string{"x", "y", "z"}
		var wg sync.WaitGroup
		deadline := time.Now().Add(time.Second)
		for g := range 12 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for time.Now().Before(deadline) {
					key := k(ids[r.IntN(len(ids))], fmt.Sprint(r.IntN(20)))
					size := int(key.Name[0]) * 97 // fixed per key
					switch n := r.IntN(100); {
					case n < 50:
						got, _, ok := Read(t, tier, key)
						if ok && !bytes.Equal(got, Body(key, size)) {
							t.Errorf("Get(%v): corrupt body of %d bytes", key, len(got))
							return
						}
					case n < 85:
						if err := Put(t, tier, key, Body(key, size)); err != nil {
							t.Errorf("Put(%v): %v", key, err)
							return
						}
					case n < 95:
						tier.Delete(context.Background(), key)
					default:
						tier.Purge(context.Background(), key.ID)
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("LargeBodyStreamed", func(t *testing.T) {
		tier := o.New(t)
		n := 8 << 20
		if o.MaxEntry > 0 && int64(n) > o.MaxEntry {
			n = int(o.MaxEntry)
		}
		key := k("big", "full/max")
		body := Body(key, n)
		mustPut(t, tier, key, body)
		h, err := tier.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		// Read in small pieces, as an HTTP response writer would.
		hash := sha256.New()
		buf := make([]byte, 7919)
		if _, err := io.CopyBuffer(struct{ io.Writer }{hash}, struct{ io.Reader }{h.Body}, buf); err != nil {
			t.Fatal(err)
		}
		h.Body.Close()
		if want := sha256.Sum256(body); !bytes.Equal(hash.Sum(nil), want[:]) || h.Size != int64(n) {
			t.Fatalf("large body differs (Size %d, want %d)", h.Size, n)
		}
		// Closing early must be fine too.
		h, err = tier.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, h.Body, 1000)
		if err := h.Body.Close(); err != nil {
			t.Fatal(err)
		}
	})

	if o.MaxEntry > 0 {
		t.Run("TooLarge", func(t *testing.T) {
			tier := o.New(t)
			key := k("big", "too")
			err := Put(t, tier, key, Body(key, int(o.MaxEntry)+1))
			if !errors.Is(err, cache.ErrTooLarge) {
				t.Fatalf("Put over MaxEntry: %v, want ErrTooLarge", err)
			}
			mustMiss(t, tier, key)
		})
	}

	if o.NewBounded != nil {
		t.Run("SizeBoundLRU", func(t *testing.T) {
			const bound = 256 << 10
			const size = 8 << 10
			tier := o.NewBounded(t, bound)
			hot := k("hot", "0")
			mustPut(t, tier, hot, Body(hot, size))
			var keys []cache.Key
			for i := range 80 { // 640 KiB through a 256 KiB tier
				key := k(fmt.Sprint("id", i%4), fmt.Sprint(i))
				keys = append(keys, key)
				mustPut(t, tier, key, Body(key, size))
				mustHit(t, tier, hot, Body(hot, size)) // keep it recent
			}
			if o.Settle != nil {
				o.Settle(t, tier)
			}
			s := tier.Stats()
			if s.Bytes > bound {
				t.Fatalf("tier holds %d bytes, bound %d", s.Bytes, bound)
			}
			if s.Evictions == 0 {
				t.Fatalf("no evictions: %+v", s)
			}
			mustHit(t, tier, hot, Body(hot, size))
			for _, key := range keys[:20] { // the oldest went first
				mustMiss(t, tier, key)
			}
			for _, key := range keys[len(keys)-10:] { // the newest stayed
				mustHit(t, tier, key, Body(key, size))
			}
		})

		t.Run("LargeEntryNotStored", func(t *testing.T) {
			const bound = 256 << 10
			tier := o.NewBounded(t, bound)
			small := k("a", "small")
			mustPut(t, tier, small, Body(small, 1000))
			huge := k("a", "huge")
			err := Put(t, tier, huge, Body(huge, bound))
			if err != nil && !errors.Is(err, cache.ErrTooLarge) {
				t.Fatalf("Put of an entry as large as the bound: %v", err)
			}
			if o.Settle != nil {
				o.Settle(t, tier)
			}
			mustMiss(t, tier, huge)
			mustHit(t, tier, small, Body(small, 1000))
		})
	}
}
