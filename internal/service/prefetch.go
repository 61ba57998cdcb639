package service

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/tracing"
)

// A render of a tiled TIFF that is not on local disk fetches what libvips
// will read before it is admitted: the file's IFDs, offset arrays and
// JPEG tables (once per file, see tiffHeads), then the stored tiles under
// the plan's region, each run of nearby tiles with one request, the runs
// concurrently. libvips then decodes from memory. Without this, a worker
// slot (one of a few per core) would wait for every
// round trip of the decode's reads, and a store 20 ms away would cap a
// two-core server at a few dozen tiles a second whatever the number of
// clients; with it, waiting for the store costs no slot, and a render
// costs one round trip however many tiles it reads.
const (
	// prefetchJobBytes bounds the bytes one render fetches ahead; a
	// render needing more (a large region at full resolution) fetches
	// only the offset arrays ahead, and its tiles as it decodes.
	prefetchJobBytes = 32 << 20
	// prefetchHeldBytes bounds the bytes fetched ahead by all renders
	// not finished yet, admitted or waiting. Renders that would exceed
	// it fetch as they decode, as before.
	prefetchHeldBytes = 512 << 20
	// prefetchGap is the largest gap between two tiles fetched with one
	// request (the gap's bytes are fetched too): a round trip costs far
	// more than 64 KiB on any link worth serving images over.
	prefetchGap = 64 << 10
	// prefetchSpan bounds the bytes of one request merging several
	// tiles, so that a large region is fetched by concurrent requests.
	prefetchSpan = 1 << 20
	// prefetchArray bounds the offset and byte count arrays of a file
	// held for its renders (all levels together: 1 MiB is 64 Ki tiles
	// of BigTIFF). Arrays past it are read by libtiff through the block
	// cache as before.
	prefetchArray = 1 << 20
	// prefetchRequests bounds the requests one render has in flight (the
	// store bounds them further, per object and globally).
	prefetchRequests = 16
)

// heldBytes counts the bytes fetched ahead by renders not finished yet,
// across every Service of the process: it is memory, and the process has
// one budget.
var heldBytes atomic.Int64

// prefetched serves reads of an object from the byte spans fetched ahead
// of its render, and every other read from the object itself. It is
// immutable once made, so libvips may read it from any thread, even after
// the render has given up on a read.
type prefetched struct {
	r     io.ReaderAt
	heads spans // the level's non-tile bytes, shared with other renders
	tiles spans // this render's tiles
	bytes int64 // of tiles, counted in heldBytes until release
	once  sync.Once
}

// span is bytes of the object at an offset.
type span struct {
	off int64
	b   []byte
}

func (s span) end() int64 { return s.off + int64(len(s.b)) }

// spans are sorted by offset and do not overlap (see mergeRanges).
type spans []span

// find returns the span holding [off, off+n), if one does: the last one
// starting at or before off is the only one that can.
func (ss spans) find(off int64, n int) (span, bool) {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].off > off }) - 1
	if i >= 0 && off >= 0 && off+int64(n) <= ss[i].end() {
		return ss[i], true
	}
	return span{}, false
}

var _ pixels.Holder = (*prefetched)(nil)

func (p *prefetched) ReadAt(b []byte, off int64) (int, error) {
	if s, ok := p.find(off, len(b)); ok {
		return copy(b, s.b[off-s.off:]), nil
	}
	return p.r.ReadAt(b, off)
}

// Holds reports whether a read of n bytes at off is served from memory.
func (p *prefetched) Holds(off int64, n int) bool {
	_, ok := p.find(off, n)
	return ok
}

func (p *prefetched) find(off int64, n int) (span, bool) {
	if s, ok := p.tiles.find(off, n); ok {
		return s, ok
	}
	return p.heads.find(off, n)
}

// release gives the held bytes back to the budget.
func (p *prefetched) release() {
	if p != nil {
		p.once.Do(func() { heldBytes.Add(-p.bytes) })
	}
}

// hold takes n bytes of the budget, if they fit.
func hold(n int64) bool {
	if heldBytes.Add(n) > prefetchHeldBytes {
		heldBytes.Add(-n)
		return false
	}
	return true
}

// prefetchTIFF fetches the bytes a render of p from the TIFF obj will
// read: those of its level besides the tiles (from heads when they were
// fetched before), then the tiles. It returns nil, nil when there is
// nothing to fetch ahead (the level is not tiled); when the file's tags
// are unsound (libvips will judge them) or the tiles do not fit the
// budget, it returns the level's other bytes alone. The caller must
// release what it returns.
func prefetchTIFF(ctx context.Context, heads *tiffHeads, obj *source.Object, hdr probe.Info, p *plan.Plan) (pf *prefetched, err error) {
	lv := hdr.Levels[p.Level].TIFF
	if lv == nil || !lv.Tiled() {
		return nil, nil
	}
	ctx, span := tracing.Start(ctx, "source.prefetch")
	defer func() {
		if pf != nil && span.IsRecording() {
			span.SetAttributes(attribute.Int64("iiifd.prefetch_bytes", pf.bytes), attribute.Int("iiifd.prefetch_spans", len(pf.tiles)))
		}
		tracing.End(span, err)
	}()
	pf = &prefetched{r: obj.ReaderAt}
	if pf.heads, err = heads.get(ctx, obj, hdr); err != nil {
		return nil, err
	}
	tiles, err := tileRanges(pf, lv, p.LevelRegion)
	if err != nil {
		var fe *probe.FormatError
		if errors.As(err, &fe) || errors.Is(err, errTooManyTiles) {
			// Unsound tags (libvips will say so), or a region too
			// large to hold: its tiles are read as it is decoded.
			return pf, nil
		}
		return nil, fetchError(ctx, err)
	}
	runs, n := mergeRanges(tiles, obj.Size, prefetchGap)
	if n > prefetchJobBytes || !hold(n) {
		return pf, nil
	}
	pf.bytes = n
	got, err := fetchSpans(ctx, obj.ReaderAt, runs)
	if err != nil {
		pf.release()
		return nil, err
	}
	pf.tiles = got // in order, apart (mergeRanges)
	return pf, nil
}

// tiffHeads keeps, for the remote TIFFs read lately, the bytes
// libvips reads besides the tiles: the read windows at the file's header
// and at every level's IFD, and every level's offset and byte-count
// arrays and JPEG tables (libtiff reads a directory's arrays whole when
// it reads the directory, and libvips 8.14 reads the directories of the
// level and the next one, and of IFD 0, for every render). They are the
// same for every render of the file, so they are fetched once and shared,
// read-only; the block cache alone would not do, as tiles passing through
// it can evict them between the fetch and the decode. Entries are keyed
// by object version, so never stale; all are dropped when they exceed
// tiffHeadsBytes.
type tiffHeads struct {
	mu    sync.Mutex
	m     map[headsKey]spans
	bytes int64
}

type headsKey struct{ key, version string }

// tiffHeadsBytes bounds the bytes tiffHeads keeps.
const tiffHeadsBytes = 32 << 20

func (h *tiffHeads) get(ctx context.Context, obj *source.Object, hdr probe.Info) (spans, error) {
	k := headsKey{obj.Key, obj.Version}
	h.mu.Lock()
	ss, ok := h.m[k]
	h.mu.Unlock()
	if ok {
		return ss, nil
	}
	rs := []probe.ByteRange{{Offset: 0, Length: pixels.ReadWindow}}
	var arrays int64
	for _, l := range hdr.Levels {
		if l.TIFF == nil {
			continue
		}
		rs = append(rs, probe.ByteRange{Offset: l.TIFF.IFD(), Length: pixels.ReadWindow})
		if t, ok := l.TIFF.JPEGTablesRange(); ok && t.Length <= pixels.ReadWindow {
			rs = append(rs, t)
		}
		for _, a := range l.TIFF.TileArrays() {
			if arrays+a.Length <= prefetchArray {
				rs = append(rs, a)
				arrays += a.Length
			}
		}
	}
	runs, n := mergeRanges(rs, obj.Size, 0)
	ss, err := fetchSpans(ctx, obj.ReaderAt, runs)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || h.bytes+n > tiffHeadsBytes {
		h.m, h.bytes = map[headsKey]spans{}, 0
	}
	if _, ok := h.m[k]; !ok && n <= tiffHeadsBytes {
		h.m[k] = ss
		h.bytes += n
	}
	return ss, nil
}

func cmpOffset(a, b int64) int { return int(min(max(a-b, -1), 1)) }

// tileRanges returns where the stored tiles (or, for planar levels, the
// tiles of every plane) under the level region r lie, one call of
// TileRanges per row.
func tileRanges(r io.ReaderAt, lv *probe.TIFFLevel, region image.Rectangle) ([]probe.ByteRange, error) {
	region = region.Intersect(image.Rect(0, 0, lv.Width, lv.Height))
	if region.Empty() {
		return nil, nil
	}
	tw, th := lv.TileWidth, lv.TileLength
	across, down := lv.Grid()
	x0, x1 := region.Min.X/tw, (region.Max.X-1)/tw
	y0, y1 := region.Min.Y/th, (region.Max.Y-1)/th
	planes := 1
	if lv.PlanarConfig == 2 {
		planes = lv.SamplesPerPixel
	}
	if (x1-x0+1)*(y1-y0+1)*planes > prefetchTiles {
		return nil, errTooManyTiles
	}
	var out []probe.ByteRange
	for pl := range planes {
		for y := y0; y <= y1; y++ {
			rs, err := lv.TileRanges(r, pl*across*down+y*across+x0, x1-x0+1)
			if err != nil {
				return nil, err
			}
			out = append(out, rs...)
		}
	}
	return out, nil
}

// prefetchTiles bounds the tiles one render fetches ahead.
const prefetchTiles = 4096

var errTooManyTiles = errors.New("service: too many tiles to fetch ahead")

// mergeRanges sorts the ranges and merges those at most gap apart into
// runs of at most prefetchSpan bytes (a larger range is a run of its
// own), each read with one request; it returns the runs and their bytes.
// Empty ranges (absent tiles of sparse files) need nothing; ranges are
// cut at the object's size. A range small enough for the decoder's small
// reads is read with the window those reads ask for (see
// pixels.ReadWindow), so the run reaches past its end.
func mergeRanges(tiles []probe.ByteRange, size, gap int64) ([]probe.ByteRange, int64) {
	rs := make([]probe.ByteRange, 0, len(tiles))
	for _, t := range tiles {
		if t.Length <= 0 || t.Offset >= size {
			continue
		}
		if t.Length <= pixels.SmallRead {
			t.Length = pixels.ReadWindow
		}
		t.Length = min(t.Length, size-t.Offset)
		rs = append(rs, t)
	}
	slices.SortFunc(rs, func(a, b probe.ByteRange) int { return cmpOffset(a.Offset, b.Offset) })
	var runs []probe.ByteRange
	for _, t := range rs {
		if k := len(runs) - 1; k >= 0 {
			last := &runs[k]
			end, tend := last.Offset+last.Length, t.Offset+t.Length
			if t.Offset <= end+gap && max(end, tend)-last.Offset <= prefetchSpan {
				last.Length = max(end, tend) - last.Offset
				continue
			}
		}
		runs = append(runs, t)
	}
	var n int64 // gaps merged into a run are fetched too
	for _, r := range runs {
		n += r.Length
	}
	return runs, n
}

// fetchSpans reads the ranges from r, prefetchRequests at a time at most.
func fetchSpans(ctx context.Context, r io.ReaderAt, ranges []probe.ByteRange) ([]span, error) {
	out := make([]span, len(ranges))
	errs := make([]error, len(ranges))
	sem := make(chan struct{}, prefetchRequests)
	var wg sync.WaitGroup
	for i, br := range ranges {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b := make([]byte, br.Length)
			k, err := r.ReadAt(b, br.Offset)
			if k == len(b) {
				err = nil
			} else if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("service: %d of %d bytes at %d: %w", k, len(b), br.Offset, io.ErrUnexpectedEOF)
			}
			out[i], errs[i] = span{off: br.Offset, b: b}, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fetchError(ctx, err)
		}
	}
	return out, nil
}

// fetchError maps a failed read ahead as pixels maps a failed read of
// the decoder: the client's context as it is, the store's own fault as it
// is, a timeout that is not the client's a 504, anything else a 502.
func fetchError(ctx context.Context, err error) error {
	var se interface{ HTTPStatus() int }
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &se):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.GatewayTimeout, err, "the source image could not be read in time")
	}
	return fault.Wrap(fault.BadGateway, err, "the source image could not be read")
}

// tileReader returns what a stored tile of obj is read through: for a
// remote object, the file's offset arrays and JPEG tables held in memory
// (fetched at once the first time, see tiffHeads), so that every tile
// costs one request, for its own bytes, instead of up to three, one after
// the other, for the blocks of the arrays and the tile. A failure to
// fetch them is left to the tile's own read to meet.
func (s *Service) tileReader(ctx context.Context, obj *source.Object, hdr probe.Info) io.ReaderAt {
	if obj.Path != "" {
		return obj
	}
	heads, err := s.heads.get(ctx, obj, hdr)
	if err != nil {
		return obj
	}
	return &prefetched{r: obj.ReaderAt, heads: heads}
}
