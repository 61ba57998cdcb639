package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/probe"
)

func TestMergeRanges(t *testing.T) {
	type br = probe.ByteRange
	r := func(off, n int64) br { return br{Offset: off, Length: n} }
	const w = pixels.ReadWindow
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n := mergeRanges(tc.in, tc.size, tc.gap)
			if !slices.Equal(got, tc.want) || n != tc.bytes {
				t.Errorf("mergeRanges = %v, %d; want %v, %d", got, n, tc.want, tc.bytes)
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
	pf := &prefetched{
		r:     failReader{},
		heads: spans{{off: 150, b: file[150:320]}, {off: 500, b: file[500:600]}},
		tiles: spans{{off: 100, b: file[100:200]}},
	}
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
		if pf.Holds(int64(tc.off), tc.n) != tc.held {
			t.Errorf("Holds(%d, %d) = %v", tc.off, tc.n, !tc.held)
		}
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
