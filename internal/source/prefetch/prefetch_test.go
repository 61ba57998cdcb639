package prefetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source"
)

func TestMergeRanges(t *testing.T) {
	type br = probe.ByteRange
	r := func(off, n int64) br { return br{Offset: off, Length: n} }
	const w = engine.ReadWindow
	tests := []struct {
		name  string
		in    []br
		size  int64
		gap   int64
		want  []br
		bytes int64
	}{
		{"none", nil, 1 << 30, prefetchGap, nil, 0},
		{"adjacent tiles of a row", []br{r(100000, 40000), r(140000, 40000), r(180000, 30000)}, 1 << 30, prefetchGap,
			[]br{r(100000, 110000)}, 110000},
		{"unsorted, a gap within reach", []br{r(400000, 40000), r(100000, 40000), r(140000+prefetchGap, 40000)}, 1 << 30, prefetchGap,
			[]br{r(100000, 80000+prefetchGap), r(400000, 40000)}, 120000 + prefetchGap},
		{"gap too wide", []br{r(100000, 40000), r(140001+prefetchGap, 40000)}, 1 << 30, prefetchGap,
			[]br{r(100000, 40000), r(140001+prefetchGap, 40000)}, 80000},
		{"no gap allowed, overlapping", []br{r(0, w), r(100, 5000), r(w, 5000), r(w+5001, 5000)}, 1 << 30, 0,
			[]br{r(0, w+5000), r(w+5001, 5000)}, w + 10000},
		{"runs capped", []br{r(0, 600<<10), r(600<<10, 600<<10), r(1200<<10, 100)}, 1 << 30, prefetchGap,
			[]br{r(0, 600<<10), r(600<<10, 600<<10+w)}, 1200<<10 + w},
		{"one tile larger than a run", []br{r(0, 3<<20)}, 1 << 30, prefetchGap, []br{r(0, 3<<20)}, 3 << 20},
		{"small tile read with its window, cut at the end", []br{r(1000, 200), r(90000, 10)}, 95000, prefetchGap,
			[]br{r(1000, w), r(90000, 5000)}, w + 5000},
		{"sparse tiles need nothing", []br{r(0, 0), r(5000, 0), r(8000, 9000)}, 1 << 30, prefetchGap, []br{r(8000, 9000)}, 9000},
		{"past the end", []br{r(2000, 10)}, 1000, prefetchGap, nil, 0},
		// The cap would stop the merge of the second range, which
		// overlaps the run: a read of it must find its bytes in one
		// run, so the run takes it whole.
		{"overlap past the cap", []br{r(0, prefetchSpan-100), r(prefetchSpan-200, 20000), r(prefetchSpan+19800, 30000)}, 1 << 30, prefetchGap,
			[]br{r(0, prefetchSpan+19800), r(prefetchSpan+19800, 30000)}, prefetchSpan + 49800},
		{"a small range's window overlapping past the cap", []br{r(0, prefetchSpan-w/2), r(prefetchSpan-w, 100)}, 1 << 30, 0,
			[]br{r(0, prefetchSpan)}, prefetchSpan},
		{"adjacent past the cap", []br{r(0, prefetchSpan-100), r(prefetchSpan-100, 20000)}, 1 << 30, prefetchGap,
			[]br{r(0, prefetchSpan-100), r(prefetchSpan-100, 20000)}, prefetchSpan + 19900},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n := mergeRanges(tc.in, tc.size, tc.gap)
			if !slices.Equal(got, tc.want) || n != tc.bytes {
				t.Errorf("mergeRanges = %v, %d; want %v, %d", got, n, tc.want, tc.bytes)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Offset < got[i-1].Offset+got[i-1].Length {
					t.Errorf("runs %v and %v overlap", got[i-1], got[i])
				}
			}
		})
	}
}

// failReader fails every read: a read the spans should have served
// reached the object.
type failReader struct{}

func (failReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("read reached the object") }

func TestPrefetchedReadAt(t *testing.T) {
	file := make([]byte, 1000)
	for i := range file {
		file[i] = byte(i * 7)
	}
	// The tiles overlap the heads' first span, as a tile's read window
	// can reach into the next IFD's.
	pf := &Reader{
		r:     failReader{},
		heads: spans{{off: 150, b: file[150:320]}, {off: 500, b: file[500:600]}},
	}
	given := 0
	pf.hold(spans{{off: 100, b: file[100:200]}}, func() { given++ })
	tests := []struct {
		off, n int
		held   bool
	}{
		{100, 100, true}, {150, 170, true}, {150, 10, true}, {319, 1, true}, {500, 100, true}, {550, 0, true},
		{100, 220, false}, {99, 2, false}, {319, 2, false}, {0, 10, false}, {320, 10, false}, {599, 2, false}, {900, 10, false},
	}
	for _, tc := range tests {
		b := make([]byte, tc.n)
		n, err := pf.ReadAt(b, int64(tc.off))
		if tc.held {
			if err != nil || n != tc.n || !bytes.Equal(b, file[tc.off:tc.off+tc.n]) {
				t.Errorf("ReadAt(%d, %d) = %d, %v; want the file's bytes", tc.off, tc.n, n, err)
			}
		} else if err == nil {
			t.Errorf("ReadAt(%d, %d) was served from the spans", tc.off, tc.n)
		}
		h := make([]byte, tc.n)
		if held := pf.ReadHeld(h, int64(tc.off)); held != tc.held {
			t.Errorf("ReadHeld(%d, %d) = %v", tc.off, tc.n, held)
		} else if held && !bytes.Equal(h, file[tc.off:tc.off+tc.n]) {
			t.Errorf("ReadHeld(%d, %d) did not copy the file's bytes", tc.off, tc.n)
		}
	}
	if given != 0 {
		t.Fatal("the tiles were given back while the render used them")
	}
	// Once the render is done, the tiles are given back, once, and
	// reads of them go to the object; the shared heads stay.
	pf.Done()
	pf.Done()
	if given != 1 {
		t.Errorf("tiles given back %d times when the render was done, want once", given)
	}
	if _, err := pf.ReadAt(make([]byte, 10), 100); err == nil || pf.ReadHeld(make([]byte, 10), 100) {
		t.Error("tiles given back are still read from memory")
	}
	if !pf.ReadHeld(make([]byte, 100), 500) {
		t.Error("the heads were dropped with the tiles")
	}
}

func TestFetchError(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	storeFault := fault.New(fault.Unavailable, "the image store cannot be reached")
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		status int
		same   bool // err itself returned
	}{
		{"client gone", done, errors.New("read tcp: use of closed connection"), 0, false},
		{"store fault", context.Background(), fmt.Errorf("reading: %w", storeFault), http.StatusServiceUnavailable, true},
		{"timeout not the client's", context.Background(), context.DeadlineExceeded, http.StatusGatewayTimeout, false},
		{"anything else", context.Background(), io.ErrUnexpectedEOF, http.StatusBadGateway, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fetchError(tc.ctx, tc.err)
			if tc.ctx.Err() != nil {
				if !errors.Is(got, context.Canceled) {
					t.Errorf("fetchError = %v, want the context's error", got)
				}
				return
			}
			if status, _ := fault.Status(got); status != tc.status || (tc.same && got != tc.err) {
				t.Errorf("fetchError = %v (%d), want %d", got, status, tc.status)
			}
		})
	}
}

// countingReader reads a file slowly, counting the reads at each offset.
type countingReader struct {
	r     io.ReaderAt
	delay time.Duration
	mu    sync.Mutex
	reads map[int64]int
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads[off]++
	c.mu.Unlock()
	time.Sleep(c.delay)
	return c.r.ReadAt(b, off)
}

// testTIFF returns a tiled pyramidal TIFF of the probe's test data, read
// through a countingReader, and its header.
func testTIFF(t *testing.T, key string) (*source.Object, *countingReader, probe.Info) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "probe", "testdata", "vips-bigtiff.tif"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := probe.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: bytes.NewReader(b), delay: 20 * time.Millisecond, reads: map[int64]int{}}
	return &source.Object{ReaderAt: cr, Key: key, Size: int64(len(b)), Version: "v1"}, cr, hdr
}

// TestTIFFHeadsOneFetch gets the header bytes of a file not held yet
// from many renders at once: they are fetched once, with one request a
// run, and shared.
func TestTIFFHeadsOneFetch(t *testing.T) {
	obj, cr, hdr := testTIFF(t, "a.tif")
	runs, n := headsRanges(obj.Size, hdr)
	if len(runs) == 0 || n == 0 {
		t.Fatal("nothing to fetch")
	}
	var h Heads
	const renders = 16
	got := make([]spans, renders)
	var wg sync.WaitGroup
	for i := range renders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss, err := h.get(t.Context(), obj, hdr)
			if err != nil {
				t.Error(err)
			}
			got[i] = ss
		}()
	}
	wg.Wait()
	for _, r := range runs {
		if k := cr.reads[r.Offset]; k != 1 {
			t.Errorf("run %v read %d times, want once", r, k)
		}
	}
	if len(cr.reads) != len(runs) {
		t.Errorf("%d reads at distinct offsets, want %d", len(cr.reads), len(runs))
	}
	for i := range got {
		if len(got[i]) != len(runs) || &got[i][0] != &got[0][0] {
			t.Fatalf("render %d got spans %d not shared", i, len(got[i]))
		}
	}
	if h.bytes != n {
		t.Errorf("%d bytes counted, want %d", h.bytes, n)
	}
}

// TestTIFFHeadsLeave: a render that stops waiting gets its context's
// error at once while the fetch goes on for the others; when all have
// gone, the fetch stops and its bytes are given back.
func TestTIFFHeadsLeave(t *testing.T) {
	obj, cr, hdr := testTIFF(t, "a.tif")
	cr.delay = 200 * time.Millisecond
	var h Heads
	gone, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.get(gone, obj, hdr)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("get = %v, want the context's error", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		b, k := h.bytes, len(h.m)
		h.mu.Unlock()
		if b == 0 && k == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes and %d entries left after the only render left", b, k)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The next render fetches again, and keeps what it fetched.
	cr.delay = 0
	if ss, err := h.get(t.Context(), obj, hdr); err != nil || len(ss) == 0 {
		t.Fatalf("get = %d spans, %v", len(ss), err)
	}
}

// TestTIFFHeadsEvictsLRU fills the bound: the least recently used file
// gives way, the others stay.
func TestTIFFHeadsEvictsLRU(t *testing.T) {
	a, cr, hdr := testTIFF(t, "a.tif")
	cr.delay = 0
	_, n := headsRanges(a.Size, hdr)
	h := Heads{max: 2*n + n/2}
	obj := func(key string) *source.Object { o := *a; o.Key = key; return &o }
	for _, key := range []string{"a.tif", "b.tif", "a.tif", "c.tif"} {
		if _, err := h.get(t.Context(), obj(key), hdr); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]bool{"a.tif": true, "b.tif": false, "c.tif": true} {
		if _, ok := h.m[headsKey{key, "v1"}]; ok != want {
			t.Errorf("%s held: %v, want %v", key, ok, want)
		}
	}
	if h.bytes != 2*n || h.lru.Len() != 2 {
		t.Errorf("%d bytes in %d entries, want %d in 2", h.bytes, h.lru.Len(), 2*n)
	}
	// A file larger than the bound is not held, and nothing gives way.
	h.max = n - 1
	if ss, err := h.get(t.Context(), obj("d.tif"), hdr); ss != nil || err != nil {
		t.Errorf("get of a file over the bound = %d spans, %v; want none", len(ss), err)
	}
	if h.lru.Len() != 2 {
		t.Errorf("%d entries left, want 2", h.lru.Len())
	}
}

// panicReader panics as a store's SDK might.
type panicReader struct{}

func (panicReader) ReadAt([]byte, int64) (int, error) { panic("nil map in the SDK") }

// TestFetchSpansPanic: a read that panics on a fetching goroutine fails
// its span with a 500, and the process lives on.
func TestFetchSpansPanic(t *testing.T) {
	_, err := fetchSpans(t.Context(), panicReader{}, []probe.ByteRange{{Offset: 0, Length: 10}, {Offset: 100, Length: 10}})
	if status, msg := fault.Status(err); status != http.StatusInternalServerError || strings.Contains(msg, "SDK") {
		t.Errorf("fetchSpans = %v (%d %q), want a 500 naming no internals", err, status, msg)
	}
	if err == nil || !strings.Contains(fmt.Sprint(errors.Unwrap(err)), "nil map in the SDK") {
		t.Errorf("the cause %v does not say what panicked", errors.Unwrap(err))
	}
}
