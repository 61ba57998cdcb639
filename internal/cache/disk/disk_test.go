package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/cachetest"
	"github.com/iiifd/iiifd/internal/cache/memory"
)

func open(t *testing.T, dir string, max int64) *Tier {
	t.Helper()
	d, err := New(Config{Dir: dir, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		// Every writer was committed or aborted: nothing may be left over.
		if des, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(des) != 0 {
			t.Errorf("temporary files left in %s: %d", dir, len(des))
		}
	})
	waitReady(t, d)
	return d
}

func waitReady(t *testing.T, d *Tier) {
	t.Helper()
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("disk tier not ready after 10s")
	}
}

func TestConformance(t *testing.T) {
	cachetest.Run(t, cachetest.Options{
		New:        func(t *testing.T) cache.Tier { return open(t, t.TempDir(), 64<<20) },
		NewBounded: func(t *testing.T, max int64) cache.Tier { return open(t, t.TempDir(), max) },
		MaxEntry:   8 << 20,
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Dir: t.TempDir()}, {Dir: t.TempDir(), MaxBytes: 1, MaxEntryFraction: -1}, {MaxBytes: 100}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

func key(i int) cache.Key {
	return cache.Key{ID: "img/" + string(rune('a'+i%3)) + ".tif", Name: "tile " + string(rune('0'+i))}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 64<<20)
	for i := range 6 {
		if err := cachetest.Put(t, d, key(i), cachetest.Body(key(i), 1000*i)); err != nil {
			t.Fatal(err)
		}
	}
	before := d.Stats()
	d.Close()

	d = open(t, dir, 64<<20)
	if s := d.Stats(); s.Entries != 6 || s.Bytes != before.Bytes {
		t.Fatalf("after restart: %+v, want 6 entries of %d bytes", s, before.Bytes)
	}
	for i := range 6 {
		got, h, ok := cachetest.Read(t, d, key(i))
		if !ok || !bytes.Equal(got, cachetest.Body(key(i), 1000*i)) || h.ContentType != "image/jpeg" {
			t.Fatalf("entry %d lost in restart", i)
		}
	}
	// Purge still finds every entry of an identifier after a restart.
	d.Purge(context.Background(), key(0).ID)
	for i := range 6 {
		_, _, ok := cachetest.Read(t, d, key(i))
		if ok != (key(i).ID != key(0).ID) {
			t.Fatalf("entry %d: hit %v after purging %q", i, ok, key(0).ID)
		}
	}
}

func TestRestartEvictsDownToASmallerBound(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 64<<20)
	for i := range 10 {
		cachetest.Put(t, d, key(i), cachetest.Body(key(i), 10000))
	}
	d.Close()
	d = open(t, dir, 50000)
	if s := d.Stats(); s.Bytes > 50000 || s.Entries == 0 || s.Evictions == 0 {
		t.Fatalf("after restart with a smaller bound: %+v", s)
	}
}

func TestCrashLeftoversAreNeverServedAndCleaned(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 64<<20)
	good, half := key(1), key(2)
	cachetest.Put(t, d, good, cachetest.Body(good, 50000))
	cachetest.Put(t, d, half, cachetest.Body(half, 50000))
	d.Close()

	// A crash mid-write leaves a temporary file and, on a file system
	// that lost unsynced data, a truncated entry.
	_, rel := paths(half)
	if err := os.Truncate(filepath.Join(dir, "data", rel), 20000); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "tmp", "0123456789abcdef-4242")
	os.WriteFile(leftover, []byte("half an entry"), 0o644)
	trash := filepath.Join(dir, "tmp", "0123456789abcdef-purge-1")
	os.MkdirAll(filepath.Join(trash, "x"), 0o755)

	d = open(t, dir, 64<<20)
	if des, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(des) != 0 {
		t.Fatalf("tmp not cleaned: %v", des)
	}
	if _, _, ok := cachetest.Read(t, d, half); ok {
		t.Fatal("truncated entry served")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", rel)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("truncated entry not removed: %v", err)
	}
	if got, _, ok := cachetest.Read(t, d, good); !ok || !bytes.Equal(got, cachetest.Body(good, 50000)) {
		t.Fatal("intact entry lost")
	}
	// A foreign file at an entry's path is not served either.
	_, rel = paths(key(3))
	os.MkdirAll(filepath.Dir(filepath.Join(dir, "data", rel)), 0o755)
	os.WriteFile(filepath.Join(dir, "data", rel), bytes.Repeat([]byte("x"), 100), 0o644)
	if _, _, ok := cachetest.Read(t, d, key(3)); ok {
		t.Fatal("foreign file served")
	}
}

// fullFile fails every write as a full disk does.
type fullFile struct{ name string }

func (f fullFile) Write([]byte) (int, error) { return 0, syscall.ENOSPC }
func (f fullFile) Close() error              { return nil }
func (f fullFile) Sync() error               { return syscall.ENOSPC }
func (f fullFile) Name() string              { return f.name }

func TestDiskFullOrReadOnlyIsAMiss(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 64<<20)
	old := key(0)
	cachetest.Put(t, d, old, cachetest.Body(old, 3000))
	faults := 0
	c, err := cache.New(cache.Config{OnError: func(tier, op string, k cache.Key, err error) { faults++ }}, d)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		open func() (tempFile, error)
	}{
		{"full", func() (tempFile, error) { return fullFile{filepath.Join(dir, "tmp", "never-created")}, nil }},
		{"read-only", func() (tempFile, error) { return nil, &os.PathError{Op: "open", Path: "tmp", Err: syscall.EROFS} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.openTemp = tc.open
			k := key(1)
			h, fill, err := c.Lookup(context.Background(), k)
			if err != nil || h != nil || fill == nil {
				t.Fatalf("Lookup: %v %v %v, want a fill", h, fill, err)
			}
			body := cachetest.Body(k, 200<<10)
			var client bytes.Buffer
			if n, err := io.Copy(io.MultiWriter(&client, fill), bytes.NewReader(body)); err != nil || n != int64(len(body)) {
				t.Fatalf("streaming through the fill: %d, %v", n, err)
			}
			fill.Commit(cachetest.Meta(k))
			if !bytes.Equal(client.Bytes(), body) {
				t.Fatal("client got a damaged stream")
			}
			if _, _, ok := cachetest.Read(t, d, k); ok {
				t.Fatal("entry stored on a full disk")
			}
			// Existing entries are still served.
			if got, _, ok := cachetest.Read(t, d, old); !ok || !bytes.Equal(got, cachetest.Body(old, 3000)) {
				t.Fatal("existing entry lost")
			}
		})
	}
	if faults == 0 {
		t.Fatal("faults not reported")
	}
	if des, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(des) != 0 {
		t.Fatalf("leftovers in tmp: %v", des)
	}
}

func TestLayoutAndPurgeByDirectory(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 64<<20)
	for i := range 9 {
		cachetest.Put(t, d, key(i), []byte("x"))
	}
	idDir, _ := paths(key(0))
	des, err := os.ReadDir(filepath.Join(dir, "data", idDir))
	if err != nil || len(des) != 3 {
		t.Fatalf("identifier directory holds %d entries (%v), want 3", len(des), err)
	}
	if err := d.Purge(context.Background(), key(0).ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", idDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("identifier directory still there: %v", err)
	}
	if s := d.Stats(); s.Entries != 6 {
		t.Fatalf("%d entries indexed after purge, want 6", s.Entries)
	}
	if des, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(des) != 0 {
		t.Fatalf("purged tree left in tmp: %v", des)
	}
}

func TestEvictionRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, 20000)
	for i := range 50 {
		k := cache.Key{ID: "id" + string(rune('A'+i)), Name: "x"}
		cachetest.Put(t, d, k, make([]byte, 1000))
	}
	n := 0
	tops, _ := os.ReadDir(filepath.Join(dir, "data"))
	for _, top := range tops {
		ids, _ := os.ReadDir(filepath.Join(dir, "data", top.Name()))
		n += len(ids)
	}
	if s := d.Stats(); int64(n) != s.Entries {
		t.Fatalf("%d identifier directories for %d entries", n, s.Entries)
	}
}

// TestCacheOverMemoryAndDisk runs the whole composition under load: every
// answer must be the right bytes, whichever tier or fill it came from.
func TestCacheOverMemoryAndDisk(t *testing.T) {
	d := open(t, t.TempDir(), 2<<20)
	m, err := memory.New(memory.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{}, m, d)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Second)
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for time.Now().Before(deadline) {
				k := cache.Key{ID: fmt.Sprint("id", r.IntN(4)), Name: fmt.Sprint(r.IntN(30))}
				want := cachetest.Body(k, 1000+len(k.Name)*20000)
				if r.IntN(50) == 0 {
					c.Purge(context.Background(), k.ID)
					continue
				}
				h, fill, err := c.Lookup(context.Background(), k)
				if err != nil {
					t.Error(err)
					return
				}
				if fill != nil {
					fill.Write(want[:len(want)/2])
					if r.IntN(10) == 0 {
						fill.Abort()
						continue
					}
					fill.Write(want[len(want)/2:])
					fill.Commit(cachetest.Meta(k))
					continue
				}
				var got []byte
				if r.IntN(5) == 0 { // a client that hangs up early
					got = make([]byte, 10)
					io.ReadFull(h.Body, got)
					want = want[:10]
				} else {
					got, _ = io.ReadAll(h.Body)
				}
				h.Body.Close()
				if !bytes.Equal(got, want) {
					t.Errorf("%v from %s: wrong bytes", k, h.Tier)
					return
				}
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	t.Logf("%+v", s)
	if s.Tiers[0].Hits == 0 || s.Tiers[1].Hits == 0 {
		t.Fatalf("expected hits in both tiers: %+v", s)
	}
}
