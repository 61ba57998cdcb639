package ranged

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testData(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// counter is a fetch function over a byte slice that records its calls.
type counter struct {
	data     []byte
	calls    atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
	delay    time.Duration
}

func (c *counter) fetch(ctx context.Context, off int64, p []byte) error {
	c.calls.Add(1)
	n := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	for {
		old := c.peak.Load()
		if n <= old || c.peak.CompareAndSwap(old, n) {
			break
		}
	}
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if off+int64(len(p)) > int64(len(c.data)) {
		return errors.New("fetch past the end")
	}
	copy(p, c.data[off:])
	return nil
}

func TestReadAt(t *testing.T) {
	data := testData(100_000)
	for _, tc := range []struct {
		name    string
		off, n  int64
		wantN   int
		wantEOF bool
	}{
		{"start", 0, 16, 16, false},
		{"one block", 4096, 4096, 4096, false},
		{"across blocks", 4000, 9000, 9000, false},
		{"middle", 50_000, 1, 1, false},
		{"end exactly", 100_000 - 10, 10, 10, false},
		{"over the end", 100_000 - 10, 20, 10, true},
		{"at the end", 100_000, 5, 0, true},
		{"beyond", 200_000, 5, 0, true},
		{"large direct", 10, 2 << 20, 100_000 - 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cache := range []*Cache{NewCache(1 << 20), nil} {
				c := &counter{data: data}
				r := NewStore(Config{Cache: cache}).Open(context.Background(), "o", int64(len(data)), c.fetch)
				p := make([]byte, tc.n)
				n, err := r.ReadAt(p, tc.off)
				if n != tc.wantN || errors.Is(err, io.EOF) != tc.wantEOF || (err != nil && !errors.Is(err, io.EOF)) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, EOF %v", tc.off, tc.n, n, err, tc.wantN, tc.wantEOF)
				}
				if n > 0 && !bytes.Equal(p[:n], data[tc.off:tc.off+int64(n)]) {
					t.Fatal("wrong bytes")
				}
			}
		})
	}
}

// TestCoalescing: the blocks one read misses go out as one request per
// run, and a second reader of the same object version fetches nothing.
func TestCoalescing(t *testing.T) {
	data := testData(1 << 20)
	c := &counter{data: data}
	s := NewStore(Config{Cache: NewCache(8 << 20)})
	r := s.Open(context.Background(), "o@v1", int64(len(data)), c.fetch)
	p := make([]byte, 40_000) // ten blocks
	if _, err := r.ReadAt(p, 1000); err != nil {
		t.Fatal(err)
	}
	if got := c.calls.Load(); got != 1 {
		t.Errorf("%d requests for one read, want 1", got)
	}
	// A read in the middle of cached blocks and one beyond them: only the
	// new block is fetched.
	if _, err := r.ReadAt(p[:100], 20_000); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(p[:10_000], 38_000); err != nil {
		t.Fatal(err)
	}
	if got, want := c.calls.Load(), int64(2); got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
	if st := s.Stats(); st.Requests != 2 || st.Bytes != 11*BlockSize+BlockSize || st.CacheHits == 0 {
		t.Errorf("stats %+v", st)
	}
	r2 := s.Open(context.Background(), "o@v1", int64(len(data)), c.fetch)
	if _, err := r2.ReadAt(p, 1000); err != nil || !bytes.Equal(p, data[1000:41000]) {
		t.Fatal(err)
	}
	if got := c.calls.Load(); got != 2 {
		t.Errorf("second reader of the same version fetched (%d requests)", got)
	}
	r3 := s.Open(context.Background(), "o@v2", int64(len(data)), c.fetch)
	if _, err := r3.ReadAt(p, 1000); err != nil {
		t.Fatal(err)
	}
	if got := c.calls.Load(); got != 3 {
		t.Errorf("a new version was served from the cache (%d requests)", got)
	}
}

// TestSharedFetch: concurrent readers of the same missing block make one
// request between them.
func TestSharedFetch(t *testing.T) {
	data := testData(1 << 16)
	c := &counter{data: data, delay: 50 * time.Millisecond}
	s := NewStore(Config{Cache: NewCache(1 << 20)})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.Open(context.Background(), "o", int64(len(data)), c.fetch)
			p := make([]byte, 100)
			if _, err := r.ReadAt(p, 10); err != nil || !bytes.Equal(p, data[10:110]) {
				t.Error("bad read", err)
			}
		}()
	}
	wg.Wait()
	if got := c.calls.Load(); got != 1 {
		t.Errorf("%d requests for one block read by 10 readers, want 1", got)
	}
}

func TestBounds(t *testing.T) {
	data := testData(4 << 20)
	for _, tc := range []struct{ per, global, readers, want int }{
		{2, 64, 1, 2},
		{8, 3, 4, 3},
	} {
		c := &counter{data: data, delay: 20 * time.Millisecond}
		s := NewStore(Config{Cache: NewCache(64 << 20), PerObject: tc.per, Global: tc.global})
		var wg sync.WaitGroup
		for g := 0; g < tc.readers; g++ {
			r := s.Open(context.Background(), "o", int64(len(data)), c.fetch)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := make([]byte, 100)
					off := int64((g*8 + i) * 100_000)
					if _, err := r.ReadAt(p, off); err != nil {
						t.Error(err)
					}
				}()
			}
		}
		wg.Wait()
		if got := c.peak.Load(); got > int64(tc.want) {
			t.Errorf("per %d global %d: %d requests in flight at once", tc.per, tc.global, got)
		}
	}
}

func TestCancelled(t *testing.T) {
	data := testData(1 << 16)
	// The store would answer in an hour: only the cancellation can end
	// the read.
	c := &counter{data: data, delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	r := NewStore(Config{Cache: NewCache(1 << 20)}).Open(ctx, "o", int64(len(data)), c.fetch)
	time.AfterFunc(20*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(make([]byte, 10), 0)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("cancelled read did not stop")
	}
}

func TestSpill(t *testing.T) {
	data := testData(1 << 16)
	c := &counter{data: data}
	r := NewStore(Config{Cache: NewCache(1 << 20)}).Open(context.Background(), "o", int64(len(data)), c.fetch)
	spills := 0
	r.SpillAfter(8192, func(context.Context) (io.ReaderAt, error) {
		spills++
		return bytes.NewReader(data), nil
	})
	p := make([]byte, 4096)
	for off := int64(0); off < int64(len(data)); off += 4096 {
		if _, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+4096]) {
			t.Fatal(err)
		}
	}
	if spills != 1 || c.calls.Load() != 2 {
		t.Errorf("spills %d, ranged requests %d; want 1 and 2", spills, c.calls.Load())
	}
}

func TestCacheBound(t *testing.T) {
	c := NewCache(10 * BlockSize)
	for i := int64(0); i < 100; i++ {
		c.put(blockKey{"o", i}, make([]byte, BlockSize))
	}
	if c.Bytes() != 10*BlockSize {
		t.Errorf("cache holds %d bytes", c.Bytes())
	}
	if _, ok := c.get(blockKey{"o", 99}); !ok {
		t.Error("newest block dropped")
	}
	if _, ok := c.get(blockKey{"o", 0}); ok {
		t.Error("oldest block kept")
	}
}

func TestPrime(t *testing.T) {
	data := testData(3*BlockSize + 100)
	for _, tc := range []struct {
		name     string
		primed   int
		requests int64
	}{
		{"whole object", len(data), 0},
		{"two blocks and a bit", 2*BlockSize + 10, 1},
	} {
		c := &counter{data: data}
		s := NewStore(Config{Cache: NewCache(1 << 20)})
		s.Prime("o", data[:tc.primed], int64(len(data)))
		r := s.Open(context.Background(), "o", int64(len(data)), c.fetch)
		p := make([]byte, len(data))
		if n, err := r.ReadAt(p, 0); n != len(data) || err != nil || !bytes.Equal(p, data) {
			t.Fatalf("%s: %d %v", tc.name, n, err)
		}
		if c.calls.Load() != tc.requests {
			t.Errorf("%s: %d requests after priming, want %d", tc.name, c.calls.Load(), tc.requests)
		}
		if st := s.Stats(); st.Requests != 1+tc.requests {
			t.Errorf("%s: stats %+v", tc.name, st)
		}
	}
}

// TestReadAtUncached reads bytes around cached blocks: they are fetched
// with one request for exactly their bytes, cached blocks are not used
// and nothing is added to the cache.
func TestReadAtUncached(t *testing.T) {
	data := testData(100_000)
	c := &counter{data: data}
	s := NewStore(Config{Cache: NewCache(1 << 20)})
	r := s.Open(context.Background(), "o", int64(len(data)), c.fetch)
	if _, err := r.ReadAt(make([]byte, 10), 5000); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	p := make([]byte, 9000)
	if n, err := r.ReadAtUncached(p, 3000); n != len(p) || err != nil || !bytes.Equal(p, data[3000:12000]) {
		t.Fatalf("ReadAtUncached = %d, %v; want the data's %d bytes", n, err, len(p))
	}
	after := s.Stats()
	if reqs, got, hits := after.Requests-before.Requests, after.Bytes-before.Bytes, after.CacheHits-before.CacheHits; reqs != 1 || got != int64(len(p)) || hits != 0 {
		t.Errorf("ReadAtUncached: %d requests, %d bytes, %d cache hits; want 1, %d, 0", reqs, got, hits, len(p))
	}
	// The blocks it read were not cached: reading them fetches them.
	before = s.Stats()
	if _, err := r.ReadAt(make([]byte, 10), 9000); err != nil {
		t.Fatal(err)
	}
	if reqs := s.Stats().Requests - before.Requests; reqs != 1 {
		t.Errorf("a block read uncached was then read with %d requests, want 1", reqs)
	}
	// At the end, what there is and io.EOF, as ReadAt.
	if n, err := r.ReadAtUncached(make([]byte, 20), int64(len(data))-10); n != 10 || err != io.EOF {
		t.Errorf("ReadAtUncached over the end = %d, %v; want 10, EOF", n, err)
	}
}
