package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/cachetest"
	"github.com/iiifd/iiifd/internal/cache/memory"
)

// named gives a tier another name, to stack two memory tiers.
type named struct {
	cache.Tier
	name string
}

func (n named) Name() string { return n.name }

// broken is a tier whose every operation fails.
type broken struct{}

var errBroken = errors.New("disk on fire")

func (broken) Name() string                                            { return "broken" }
func (broken) Get(context.Context, cache.Key) (*cache.Hit, error)      { return nil, errBroken }
func (broken) Create(context.Context, cache.Key) (cache.Writer, error) { return brokenWriter{}, nil }
func (broken) Delete(context.Context, cache.Key) error                 { return errBroken }
func (broken) Purge(context.Context, string) error                     { return errBroken }
func (broken) Stats() cache.Stats                                      { return cache.Stats{} }

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errBroken }
func (brokenWriter) Commit(cache.Meta) error   { return errBroken }
func (brokenWriter) Abort()                    {}

func mem(t *testing.T, name string, max int64) cache.Tier {
	t.Helper()
	m, err := memory.New(memory.Config{MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return named{m, name}
}

func newCache(t *testing.T, cfg cache.Config, tiers ...cache.Tier) *cache.Cache {
	t.Helper()
	c, err := cache.New(cfg, tiers...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve is what a request handler does: look up, stream a hit, or compute
// while writing to the client and the fill at once.
func serve(t *testing.T, c *cache.Cache, key cache.Key, compute func(w io.Writer) error) (body []byte, tier string, err error) {
	h, fill, err := c.Lookup(context.Background(), key)
	if err != nil {
		return nil, "", err
	}
	if h != nil {
		defer h.Body.Close()
		b, err := io.ReadAll(h.Body)
		return b, h.Tier, err
	}
	var client bytes.Buffer
	if err := compute(io.MultiWriter(&client, fill)); err != nil {
		fill.Fail(err)
		return nil, "", err
	}
	fill.Commit(cachetest.Meta(key))
	return client.Bytes(), "MISS", nil
}

func TestStampedeComputesOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tiers func(t *testing.T) []cache.Tier
		size  int
		share int64
	}{
		{"memory", func(t *testing.T) []cache.Tier { return []cache.Tier{mem(t, "memory", 64<<20)} }, 100 << 10, 0},
		{"no tiers", func(t *testing.T) []cache.Tier { return nil }, 100 << 10, 0},
		{"too large to share", func(t *testing.T) []cache.Tier { return []cache.Tier{mem(t, "memory", 64<<20)} }, 100 << 10, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, cache.Config{ShareLimit: tc.share}, tc.tiers(t)...)
			key := cache.Key{ID: "a.tif", Name: "0,0,512,512/512,/0/default.jpg v1"}
			want := cachetest.Body(key, tc.size)
			var computations atomic.Int64
			release := make(chan struct{})
			compute := func(w io.Writer) error {
				computations.Add(1)
				<-release // hold the fill until every request is waiting
				for i := 0; i < len(want); i += 1000 {
					w.Write(want[i:min(i+1000, len(want))])
				}
				return nil
			}
			const n = 50
			var wg sync.WaitGroup
			tiers := make(chan string, n)
			for range n {
				wg.Go(func() {
					got, tier, err := serve(t, c, key, compute)
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("got %d bytes, err %v", len(got), err)
					}
					tiers <- tier
				})
			}
			time.Sleep(100 * time.Millisecond)
			close(release)
			wg.Wait()
			close(tiers)
			if got := computations.Load(); got != 1 {
				t.Fatalf("%d computations for %d identical requests, want 1", got, n)
			}
			count := map[string]int{}
			for tier := range tiers {
				count[tier]++
			}
			if count["MISS"] != 1 {
				t.Fatalf("answers by tier: %v, want exactly one MISS", count)
			}
			if s := c.Stats(); s.Fills != 1 {
				t.Fatalf("Stats %+v, want 1 fill", s)
			}
		})
	}
}

func TestFillAbortWithErrorReachesWaiters(t *testing.T) {
	c := newCache(t, cache.Config{}, mem(t, "memory", 1<<20))
	key := cache.Key{ID: "bad.tif", Name: "x"}
	_, fill, _ := c.Lookup(context.Background(), key)
	errDamaged := errors.New("damaged source")
	done := make(chan error)
	go func() {
		_, _, err := c.Lookup(context.Background(), key)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	fill.Write([]byte("partial"))
	fill.Fail(errDamaged)
	if err := <-done; !errors.Is(err, errDamaged) {
		t.Fatalf("waiter got %v, want the fill's error", err)
	}
	// Nothing was stored, and the next lookup fills again.
	if h, fill, _ := c.Lookup(context.Background(), key); h != nil || fill == nil {
		t.Fatal("entry visible after Abort")
	} else {
		fill.Abort()
	}
}

func TestFillAbortCanceledLetsWaiterFill(t *testing.T) {
	c := newCache(t, cache.Config{}, mem(t, "memory", 1<<20))
	key := cache.Key{ID: "a", Name: "x"}
	_, first, _ := c.Lookup(context.Background(), key)
	type result struct {
		h    *cache.Hit
		fill *cache.Fill
		err  error
	}
	done := make(chan result)
	go func() {
		h, f, err := c.Lookup(context.Background(), key)
		done <- result{h, f, err}
	}()
	time.Sleep(50 * time.Millisecond)
	first.Abort() // the first client hung up
	r := <-done
	if r.err != nil || r.fill == nil {
		t.Fatalf("waiter: %+v, want to become the filler", r)
	}
	r.fill.Write([]byte("hello"))
	r.fill.Commit(cachetest.Meta(key))
	body, tier, err := serve(t, c, key, nil)
	if err != nil || string(body) != "hello" || tier != "memory" {
		t.Fatalf("after refill: %q from %q, %v", body, tier, err)
	}
}

func TestWaiterContextCanceled(t *testing.T) {
	c := newCache(t, cache.Config{})
	key := cache.Key{ID: "a", Name: "x"}
	_, fill, _ := c.Lookup(context.Background(), key)
	defer fill.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.Lookup(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want its deadline", err)
	}
}

func TestPromotion(t *testing.T) {
	top, bottom := mem(t, "memory", 1<<20), mem(t, "disk", 1<<20)
	c := newCache(t, cache.Config{}, top, bottom)
	key := cache.Key{ID: "a", Name: "tile"}
	want := cachetest.Body(key, 5000)
	if err := cachetest.Put(t, bottom, key, want); err != nil {
		t.Fatal(err)
	}
	for i, wantTier := range []string{"disk", "memory", "memory"} {
		got, tier, err := serve(t, c, key, nil)
		if err != nil || tier != wantTier || !bytes.Equal(got, want) {
			t.Fatalf("lookup %d: %d bytes from %q (%v), want %q", i, len(got), tier, err, wantTier)
		}
	}
	// A hit that is not read to the end is not promoted.
	key2 := cache.Key{ID: "a", Name: "other"}
	cachetest.Put(t, bottom, key2, cachetest.Body(key2, 5000))
	h, _, _ := c.Lookup(context.Background(), key2)
	io.CopyN(io.Discard, h.Body, 10)
	h.Body.Close()
	if _, _, ok := cachetest.Read(t, top, key2); ok {
		t.Fatal("partly read hit was promoted")
	}
}

func TestMissFillsAllTiers(t *testing.T) {
	top, bottom := mem(t, "memory", 1<<20), mem(t, "disk", 1<<20)
	c := newCache(t, cache.Config{}, top, bottom)
	key := cache.Key{ID: "a", Name: "tile"}
	want := cachetest.Body(key, 3000)
	serve(t, c, key, func(w io.Writer) error { _, err := w.Write(want); return err })
	for _, tier := range []cache.Tier{top, bottom} {
		if got, _, ok := cachetest.Read(t, tier, key); !ok || !bytes.Equal(got, want) {
			t.Fatalf("tier %s not filled", tier.Name())
		}
	}
	if err := c.Purge(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []cache.Tier{top, bottom} {
		if _, _, ok := cachetest.Read(t, tier, key); ok {
			t.Fatalf("tier %s not purged", tier.Name())
		}
	}
}

func TestPurgeDuringFillIsNotCommitted(t *testing.T) {
	top := mem(t, "memory", 1<<20)
	c := newCache(t, cache.Config{}, top)
	key := cache.Key{ID: "a", Name: "tile"}
	_, fill, _ := c.Lookup(context.Background(), key)
	fill.Write([]byte("stale pixels"))
	c.Purge(context.Background(), "a")
	fill.Commit(cachetest.Meta(key))
	if _, _, ok := cachetest.Read(t, top, key); ok {
		t.Fatal("a fill begun before a purge was committed after it")
	}
}

func TestBrokenTierIsAMiss(t *testing.T) {
	var faults atomic.Int64
	top := mem(t, "memory", 1<<20)
	c := newCache(t, cache.Config{OnError: func(tier, op string, key cache.Key, err error) {
		if tier != "broken" || !errors.Is(err, errBroken) {
			t.Errorf("OnError(%q, %q, %v, %v)", tier, op, key, err)
		}
		faults.Add(1)
	}}, broken{}, top)
	key := cache.Key{ID: "a", Name: "tile"}
	body, tier, err := serve(t, c, key, func(w io.Writer) error {
		n, err := w.Write([]byte("pixels"))
		if n != 6 || err != nil {
			t.Errorf("Fill.Write = %d, %v; a broken tier must not fail the stream", n, err)
		}
		return nil
	})
	if err != nil || string(body) != "pixels" || tier != "MISS" {
		t.Fatalf("%q %q %v", body, tier, err)
	}
	body, tier, err = serve(t, c, key, nil)
	if err != nil || string(body) != "pixels" || tier != "memory" {
		t.Fatalf("second lookup: %q from %q, %v", body, tier, err)
	}
	if faults.Load() < 2 {
		t.Fatalf("%d faults reported", faults.Load())
	}
	if err := c.Purge(context.Background(), "a"); !errors.Is(err, errBroken) {
		t.Fatalf("Purge: %v", err)
	}
	if _, _, ok := cachetest.Read(t, top, key); ok {
		t.Fatal("healthy tier not purged when another tier failed")
	}
}

// TestPeek: the cache peeks into its first tier only, and only when that
// tier can hand out its bytes (the memory tier).
func TestPeek(t *testing.T) {
	m, err := memory.New(memory.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, cache.Config{}, m, mem(t, "second", 1<<20))
	if c.PeekTier() != "memory" {
		t.Errorf("PeekTier %q", c.PeekTier())
	}
	k := cache.Key{ID: "id", Name: "n"}
	if _, _, ok := c.Peek(k); ok {
		t.Fatal("Peek hit an empty cache")
	}
	serve(t, c, k, func(w io.Writer) error { _, err := w.Write([]byte("bytes")); return err })
	if b, _, ok := c.Peek(k); !ok || string(b) != "bytes" {
		t.Errorf("Peek after a fill: %q %v", b, ok)
	}
	// An entry only a lower tier holds is not peeked at, nor promoted.
	lower := mem(t, "lower", 1<<20)
	c3 := newCache(t, cache.Config{}, m, lower)
	k2 := cache.Key{ID: "id", Name: "lower-only"}
	w, _ := lower.Create(context.Background(), k2)
	w.Write([]byte("deep"))
	w.Commit(cachetest.Meta(k2))
	for range 2 {
		if _, _, ok := c3.Peek(k2); ok {
			t.Error("Peek found an entry of a lower tier")
		}
	}
	// A first tier that cannot peek (here: a renamed memory tier hides
	// its Peek behind the Tier interface) turns Peek off.
	c2 := newCache(t, cache.Config{}, mem(t, "wrapped", 1<<20))
	serve(t, c2, k, func(w io.Writer) error { _, err := w.Write([]byte("bytes")); return err })
	if _, _, ok := c2.Peek(k); ok || c2.PeekTier() != "" {
		t.Errorf("Peek through a tier without Peek: ok %v, PeekTier %q", ok, c2.PeekTier())
	}
	if _, _, ok := newCache(t, cache.Config{}).Peek(k); ok {
		t.Error("Peek hit a cache without tiers")
	}
}
