// Package prefetch reads ahead, at the byte level, what libvips will read
// of a remote tiled TIFF, mirroring how libtiff reads a file: its IFDs,
// offset arrays and JPEG tables once per file (Heads), and the stored
// tiles under a render's region (TIFF), so that a render waits for the
// store before it is admitted and holds no worker slot meanwhile. It
// knows the TIFF layout from package probe and nothing of the pipeline:
// the render's region and level, and the budget its bytes are held in,
// are given to it.
package prefetch

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"runtime/debug"
	"slices"
	"sort"
	"sync"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/tracing"
)

// A render of a tiled TIFF that is not on local disk fetches what libvips
// will read before it is admitted: the file's IFDs, offset arrays and
// JPEG tables (once per file, see Heads), then the stored tiles under
// the plan's region, each run of nearby tiles with one request, the runs
// concurrently. libvips then decodes from memory. Without this, a worker
// slot (one of a few per core) would wait for every
// round trip of the decode's reads, and a store 20 ms away would cap a
// two-core server at a few dozen tiles a second whatever the number of
// clients; with it, waiting for the store costs no slot, and a render
// costs one round trip however many tiles it reads.

// A render fetches ahead at most Config.PrefetchPerRender bytes of tiles
// (by default config.DefaultPrefetchPerRender, the default of
// --prefetch-per-render); a render needing more (a large region at full
// resolution) fetches only the offset arrays ahead, and its tiles as it
// decodes. All renders not admitted yet hold at most a share of the
// admission memory budget (limit.Place.Hold, limit.Config.Prefetched); renders
// that would exceed it fetch as they decode, as before.

const (
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

// Reader serves reads of an object from the byte spans fetched ahead
// of its render, and every other read from the object itself. libvips
// may read it from any thread, even after the render has given up on a
// read (see engine.Input: a read still running when the render's context
// ends is abandoned, not waited for).
//
// The render's tiles are held in its admission place until the last of
// their users lets go: the render itself (done, once it has returned)
// and every read under way, abandoned ones included, which keep the
// bytes reachable. Then the bytes are dropped and given back to the
// budget; a read that starts later finds nothing held and reads the
// object.
type Reader struct {
	r     io.ReaderAt
	heads spans // the level's non-tile bytes, shared with other renders
	bytes int64 // of tiles, held in the render's admission place

	mu       sync.Mutex
	tiles    spans  // this render's tiles; nil once given back
	users    int    // the render until done, and reads under way
	giveBack func() // gives the tiles' bytes back to the budget
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

var _ engine.MemoryReader = (*Reader)(nil)

func (p *Reader) ReadAt(b []byte, off int64) (int, error) {
	tiles := p.use()
	defer p.Done()
	if s, ok := find(tiles, p.heads, off, len(b)); ok {
		return copy(b, s.b[off-s.off:]), nil
	}
	return p.r.ReadAt(b, off)
}

// ReadInMemory fills b with the bytes at off if they are held in memory and
// reports whether they were: one lookup, and the copy made under the
// lock, so the tiles cannot be given back between the two.
func (p *Reader) ReadInMemory(b []byte, off int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := find(p.tiles, p.heads, off, len(b))
	if ok {
		copy(b, s.b[off-s.off:])
	}
	return ok
}

func find(tiles, heads spans, off int64, n int) (span, bool) {
	if s, ok := tiles.find(off, n); ok {
		return s, ok
	}
	return heads.find(off, n)
}

// hold makes the render the tiles' first user and gives tiles' bytes
// back with giveBack once the last user lets go.
func (p *Reader) hold(tiles spans, giveBack func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tiles, p.giveBack, p.users = tiles, giveBack, 1
}

// use counts a user of the tiles until done and returns them (nil once
// given back).
func (p *Reader) use() spans {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tiles != nil {
		p.users++
	}
	return p.tiles
}

// Done ends a use of the tiles (the render's, when it has returned); the
// last drops them and gives their bytes back.
func (p *Reader) Done() {
	p.mu.Lock()
	if p.tiles == nil {
		p.mu.Unlock()
		return
	}
	if p.users--; p.users > 0 {
		p.mu.Unlock()
		return
	}
	giveBack := p.giveBack
	p.tiles, p.giveBack = nil, nil
	p.mu.Unlock()
	if giveBack != nil {
		giveBack()
	}
}

// Budget holds the bytes a render fetches ahead before it is admitted
// (limit.Place implements it): Hold counts n more bytes and reports
// whether they fit; Keep makes them outlive the render's place until
// giveBack is called.
type Budget interface {
	Hold(n int64) bool
	Keep() (giveBack func())
}

// TIFF fetches the bytes a render of the region of level from the TIFF obj will
// read: those of its level besides the tiles (from heads when they were
// fetched before), then the tiles, unless they exceed perRender bytes.
// It returns nil, nil when there is nothing to fetch ahead (the level is
// not tiled); when the file's tags are unsound (libvips will judge them)
// or the tiles do not fit the budget, it returns the level's other bytes
// alone. The tiles' bytes are held in place (see limit.Place.Hold and
// Keep) until the render is done with them (Reader.Done) and no read
// of them is under way, even past the place's release.
func TIFF(ctx context.Context, heads *Heads, place Budget, perRender int64, obj *source.Object, hdr probe.Info, level int, region image.Rectangle) (pf *Reader, err error) {
	lv := hdr.Levels[level].TIFF
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
	pf = &Reader{r: obj.ReaderAt}
	if pf.heads, err = heads.get(ctx, obj, hdr); err != nil {
		return nil, err
	}
	tiles, err := tileRanges(pf, lv, region)
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
	if n == 0 || n > perRender || !place.Hold(n) {
		return pf, nil
	}
	giveBack := place.Keep()
	got, err := fetchSpans(ctx, uncached(obj.ReaderAt), runs)
	if err != nil {
		giveBack() // fetchSpans waited for its reads
		return nil, err
	}
	pf.bytes = n
	pf.hold(got, giveBack) // in order, apart (mergeRanges)
	return pf, nil
}

// uncached returns what a render's tiles are fetched ahead through: the
// object's reads that bypass the block cache when it has them (see
// ranged.Reader.ReadAtUncached), as the render holds the tiles itself;
// else the object.
func uncached(r io.ReaderAt) io.ReaderAt {
	if u, ok := r.(interface {
		ReadAtUncached(p []byte, off int64) (int, error)
	}); ok {
		return readerAtFunc(u.ReadAtUncached)
	}
	return r
}

// readerAtFunc is an io.ReaderAt of a function.
type readerAtFunc func(p []byte, off int64) (int, error)

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

// Heads keeps, for the remote TIFFs read lately, the bytes
// libvips reads besides the tiles: the read windows at the file's header
// and at every level's IFD, and every level's offset and byte-count
// arrays and JPEG tables (libtiff reads a directory's arrays whole when
// it reads the directory, and libvips 8.14 reads the directories of the
// level and the next one, and of IFD 0, for every render). They are the
// same for every render of the file, so they are fetched once and shared,
// read-only; the block cache alone would not do, as tiles passing through
// it can evict them between the fetch and the decode. Entries are keyed
// by object version, so never stale. Concurrent renders of a file not
// held yet share one fetch; the bytes held and being fetched together
// stay within max (tiffHeadsBytes when 0), the least recently used
// entries giving way.
type Heads struct {
	max   int64
	mu    sync.Mutex
	m     map[headsKey]*headsEntry
	lru   list.List // of *headsEntry fetched, the most recently used first
	bytes int64     // of the entries, fetched or being fetched
}

// NewHeads returns an empty Heads keeping at most max bytes
// (tiffHeadsBytes when 0; 1 keeps none, so that libvips reads them from
// the store as it decodes).
func NewHeads(max int64) *Heads { return &Heads{max: max} }

type headsKey struct{ key, version string }

// headsEntry is one file's bytes, fetched or being fetched.
type headsEntry struct {
	key  headsKey
	n    int64
	done chan struct{} // closed when the fetch ends; then ss, err are set
	ss   spans
	err  error
	el   *list.Element // in lru once fetched
	// waiters counts the renders waiting for the fetch; when all have
	// gone the fetch is stopped (cancel).
	waiters int
	cancel  context.CancelFunc
	// owner is the context of the render that started the fetch, until
	// it ends; ownerGone tells whether that render had gone by then.
	owner     context.Context
	ownerGone bool
}

// tiffHeadsBytes bounds the bytes Heads keeps.
const tiffHeadsBytes = 32 << 20

// get returns the bytes of obj that libvips reads besides the tiles,
// fetching them unless held or being fetched. When they cannot be held
// (they exceed the bound, or fetches under way fill it), it returns none:
// libvips reads them from the object as it decodes.
func (h *Heads) get(ctx context.Context, obj *source.Object, hdr probe.Info) (spans, error) {
	for {
		ss, err, again := h.wait(ctx, obj, hdr)
		if !again {
			return ss, err
		}
		// The fetch failed as the render that made it went away (an
		// object reads under the context of the request that opened
		// it): this render, still alive, fetches again.
	}
}

// wait joins or starts the fetch of obj's bytes and waits for it within
// ctx; again reports a fetch of another render that failed once that
// render was gone.
func (h *Heads) wait(ctx context.Context, obj *source.Object, hdr probe.Info) (ss spans, err error, again bool) {
	k := headsKey{obj.Key, obj.Version}
	h.mu.Lock()
	e, ok := h.m[k]
	if !ok {
		runs, n := headsRanges(obj.Size, hdr)
		if !h.makeRoom(n) {
			h.mu.Unlock()
			return nil, nil, false
		}
		// The fetch is the file's, not this render's: it goes on while
		// any render waits for it.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		e = &headsEntry{key: k, n: n, done: make(chan struct{}), owner: ctx, cancel: cancel}
		if h.m == nil {
			h.m = map[headsKey]*headsEntry{}
		}
		h.m[k] = e
		h.bytes += n
		go h.fetch(fctx, e, obj.ReaderAt, runs)
	}
	select {
	case <-e.done:
		if e.el != nil {
			h.lru.MoveToFront(e.el)
		}
		h.mu.Unlock()
		return e.ss, e.err, false
	default:
	}
	e.waiters++
	h.mu.Unlock()
	select {
	case <-e.done:
		h.mu.Lock()
		e.waiters--
		h.mu.Unlock()
		again = e.err != nil && e.ownerGone && ctx.Err() == nil
		return e.ss, e.err, again
	case <-ctx.Done():
		h.mu.Lock()
		defer h.mu.Unlock()
		select {
		case <-e.done:
			e.waiters--
			return nil, ctx.Err(), false
		default:
		}
		if e.waiters--; e.waiters == 0 {
			// Nobody waits for it any more: stop it, and let the next
			// render of the file start another.
			e.cancel()
			if h.m[k] == e {
				delete(h.m, k)
			}
		}
		return nil, ctx.Err(), false
	}
}

// makeRoom evicts the least recently used entries fetched until n more
// bytes fit, and reports whether they do. Called with mu held.
func (h *Heads) makeRoom(n int64) bool {
	limit := h.max
	if limit <= 0 {
		limit = tiffHeadsBytes
	}
	if n > limit {
		return false
	}
	for h.bytes+n > limit {
		el := h.lru.Back()
		if el == nil {
			return false // the rest is being fetched
		}
		e := h.lru.Remove(el).(*headsEntry)
		e.el = nil
		if h.m[e.key] == e {
			delete(h.m, e.key)
		}
		h.bytes -= e.n
	}
	return true
}

// fetch reads e's runs and keeps them, or drops e when the fetch failed.
func (h *Heads) fetch(ctx context.Context, e *headsEntry, r io.ReaderAt, runs []probe.ByteRange) {
	ss, err := fetchSpans(ctx, r, runs)
	e.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	e.ss, e.err = ss, err
	e.ownerGone, e.owner = e.owner.Err() != nil, nil
	if err == nil && h.m[e.key] == e {
		e.el = h.lru.PushFront(e)
	} else {
		if h.m[e.key] == e {
			delete(h.m, e.key)
		}
		h.bytes -= e.n
	}
	close(e.done)
}

// headsRanges returns the runs of the bytes of a TIFF that libvips reads
// besides the tiles, and their bytes.
func headsRanges(size int64, hdr probe.Info) ([]probe.ByteRange, int64) {
	rs := []probe.ByteRange{{Offset: 0, Length: engine.ReadWindow}}
	var arrays int64
	for _, l := range hdr.Levels {
		if l.TIFF == nil {
			continue
		}
		rs = append(rs, probe.ByteRange{Offset: l.TIFF.IFD(), Length: engine.ReadWindow})
		if t, ok := l.TIFF.JPEGTablesRange(); ok && t.Length <= engine.ReadWindow {
			rs = append(rs, t)
		}
		// The ICC profile: libvips reads it, and passthrough splices it.
		if t, ok := l.TIFF.ICCProfileRange(); ok && t.Length <= engine.ReadWindow {
			rs = append(rs, t)
		}
		for _, a := range l.TIFF.TileArrays() {
			if arrays+a.Length <= prefetchArray {
				rs = append(rs, a)
				arrays += a.Length
			}
		}
	}
	return mergeRanges(rs, size, 0)
}

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

var errTooManyTiles = errors.New("prefetch: too many tiles to fetch ahead")

// mergeRanges sorts the ranges and merges those at most gap apart into
// runs of at most prefetchSpan bytes (a larger range is a run of its
// own, and ranges that overlap are one run whatever its size), each
// read with one request; the runs do not overlap; it returns the runs and their bytes.
// Empty ranges (absent tiles of sparse files) need nothing; ranges are
// cut at the object's size. A range small enough for the decoder's small
// reads is read with the window those reads ask for (see
// engine.ReadWindow), so the run reaches past its end.
func mergeRanges(tiles []probe.ByteRange, size, gap int64) ([]probe.ByteRange, int64) {
	rs := make([]probe.ByteRange, 0, len(tiles))
	for _, t := range tiles {
		if t.Length <= 0 || t.Offset >= size {
			continue
		}
		if t.Length <= engine.SmallRead {
			t.Length = engine.ReadWindow
		}
		t.Length = min(t.Length, size-t.Offset)
		rs = append(rs, t)
	}
	slices.SortFunc(rs, func(a, b probe.ByteRange) int { return cmp.Compare(a.Offset, b.Offset) })
	var runs []probe.ByteRange
	for _, t := range rs {
		if k := len(runs) - 1; k >= 0 {
			last := &runs[k]
			end, tend := last.Offset+last.Length, t.Offset+t.Length
			// Overlapping ranges always merge, past the cap: a read of
			// either must find its bytes in one run.
			if t.Offset < end || t.Offset <= end+gap && tend-last.Offset <= prefetchSpan {
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
// A read that panics fails with a fault.Internal.
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
			defer func() {
				// Store code runs here, off the request's goroutine:
				// its panic fails this span, not the process.
				if v := recover(); v != nil {
					errs[i] = fault.Wrap(fault.Internal, fmt.Errorf("prefetch: panic reading %d bytes at %d: %v\n%s", br.Length, br.Offset, v, debug.Stack()), "internal server error")
				}
			}()
			b := make([]byte, br.Length)
			k, err := r.ReadAt(b, br.Offset)
			if k == len(b) {
				err = nil
			} else if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("prefetch: %d of %d bytes at %d: %w", k, len(b), br.Offset, io.ErrUnexpectedEOF)
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
// the decoder (engine.ReadFault): the client's context as it is, the
// store's own fault as it is, a timeout that is not the client's a 504,
// anything else a 502.
func fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return engine.ReadFault(err)
}

// TileReader returns what a stored tile of obj is read through: for a
// remote object, the file's offset arrays and JPEG tables held in memory
// (fetched at once the first time, see Heads), so that every tile
// costs one request, for its own bytes, instead of up to three, one after
// the other, for the blocks of the arrays and the tile. A failure to
// fetch them is left to the tile's own read to meet.
func TileReader(ctx context.Context, h *Heads, obj *source.Object, hdr probe.Info) io.ReaderAt {
	if obj.Path != "" {
		return obj
	}
	heads, err := h.get(ctx, obj, hdr)
	if err != nil {
		return obj
	}
	return &Reader{r: obj.ReaderAt, heads: heads}
}
