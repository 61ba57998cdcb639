package memory_test

import (
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
