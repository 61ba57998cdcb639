package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/cachetest"
	"github.com/iiifd/iiifd/internal/cache/memory"
)

func newTier(t *testing.T, max int64) cache.Tier {
	t.Helper()
	m, err := memory.New(memory.Config{MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConformance(t *testing.T) {
	cachetest.Run(t, cachetest.Options{
		New:        func(t *testing.T) cache.Tier { return newTier(t, 64<<20) },
		NewBounded: newTier,
		MaxEntry:   8 << 20,
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []memory.Config{{}, {MaxBytes: -1}, {MaxBytes: 10, MaxEntryFraction: 2}} {
		if _, err := memory.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

// TestPeek: Peek sees exactly what Get sees, counts hits, and allocates
// nothing; after a delete, a purge or an eviction it misses.
func TestPeek(t *testing.T) {
	m, err := memory.New(memory.Config{MaxBytes: 4096, MaxEntryFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(k cache.Key, body string) {
		w, err := m.Create(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
		if err := w.Commit(cache.Meta{ContentType: "image/png", ETag: `"e"`}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := cache.Key{ID: "a", Name: "1"}, cache.Key{ID: "b", Name: "1"}
	if _, _, ok := m.Peek(a); ok {
		t.Fatal("Peek of an absent key hit")
	}
	put(a, "hello")
	body, meta, ok := m.Peek(a)
	if !ok || string(body) != "hello" || meta.ContentType != "image/png" || meta.Size != 5 {
		t.Fatalf("Peek: %q %+v %v", body, meta, ok)
	}
	if got := m.Stats().Hits; got != 1 {
		t.Errorf("hits after one Peek: %d", got)
	}
	if n := testing.AllocsPerRun(100, func() { m.Peek(a) }); n != 0 {
		t.Errorf("Peek allocates %v times", n)
	}
	m.Delete(ctx, a)
	if _, _, ok := m.Peek(a); ok {
		t.Error("Peek hit after Delete")
	}
	put(b, "world")
	m.Purge(ctx, "b")
	if _, _, ok := m.Peek(b); ok {
		t.Error("Peek hit after Purge")
	}
	put(a, strings.Repeat("x", 3000))
	put(b, strings.Repeat("y", 3000)) // evicts a
	if _, _, ok := m.Peek(a); ok {
		t.Error("Peek hit an evicted entry")
	}
	if _, _, ok := m.Peek(b); !ok {
		t.Error("Peek missed the entry that stayed")
	}
}
