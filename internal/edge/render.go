package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/tiles"
)

// Bounds on the work of one request, as the native server's.
const (
	fetchConcurrency = 8
	maxStitchTiles   = 8192
	// coalesceGap is the largest gap between two stored TIFF tiles of
	// one row that are still fetched in one range request: the bytes
	// between cost less than another round trip.
	coalesceGap = 16 << 10
	// maxCoalesced bounds one such request.
	maxCoalesced = 8 << 20
)

// Public messages, as the native server's.
const (
	msgTileMissing = "a stored tile of the image is missing"
	msgTileRead    = "a stored tile of the image could not be read"
	msgInfoBroken  = "the stored description (info.json) of the image is damaged or unreadable"
	msgDamaged     = "the source image is damaged or unreadable"
)

// source is what an identifier names: an image file, or a tile pyramid
// (dir is its folder; obj its info.json).
type source struct {
	obj Object
	dir string
}

// open finds what the identifier id names, with the native server's
// rules on identifiers: a safe relative path, no hidden segment. An
// identifier with an image file's extension names that file, else (or
// when that file is absent) the tile pyramid of the folder id. The
// store cannot list folders, so "photo" does not find photo.tif as the
// native server does: identifiers of files carry their extension.
func (h *Host) open(ctx context.Context, id string) (source, error) {
	if !resolve.ValidIdentifier(id) {
		return source{}, resolve.ErrInvalidIdentifier
	}
	notFound := fault.New(fault.NotFound, "no image with identifier %q", truncate(id))
	if resolve.Hidden(id) {
		return source{}, notFound
	}
	if resolve.HasImageExtension(id) {
		obj, err := h.store.Open(ctx, id, headBytes)
		if err == nil {
			return source{obj: obj}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return source{}, storeError(err, "the image could not be opened")
		}
	}
	b, obj, err := h.store.Get(ctx, id+"/"+pyramid.InfoFile, pyramid.MaxInfoSize)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return source{}, notFound
		}
		return source{}, storeError(err, "the image could not be opened")
	}
	obj.Head = b
	return source{obj: obj, dir: id}, nil
}

// storeError keeps a store's own fault (502, 504) and makes anything
// else a 500 with msg.
func storeError(err error, msg string) error {
	var fe *fault.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fault.Wrap(fault.Internal, err, "%s", msg)
}

func truncate(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:200] + "…"
}

// describe returns what the header of src says, read once per object
// version, and refuses sources nothing of which can be shown within the
// limits, as the native server does.
func (h *Host) describe(ctx context.Context, src source) (describe.Header, error) {
	hd := h.heads.get(src.obj)
	hd.once.Lock()
	defer hd.once.Unlock()
	if !hd.done || (hd.err != nil && !permanent(hd.err)) {
		hd.hdr, hd.err = h.readHeader(ctx, src, hd)
		hd.done = true
	}
	if hd.err != nil {
		return describe.Header{}, hd.err
	}
	hdr := hd.hdr
	if lim := h.set.Limits.MaxSourcePixels; lim > 0 && hdr.Pyramid == nil {
		if a := plan.SmallestDecode(hdr.Image); a > lim {
			return describe.Header{}, fault.New(fault.NotImplemented,
				"the source image is %dx%d pixels without tiles or smaller levels; showing it would decode %d pixels, more than this server's limit of %d (maxSourcePixels); store it as a tiled pyramid (iiifd ingest)",
				hdr.Info.Width, hdr.Info.Height, a, lim)
		}
	}
	return hdr, nil
}

// permanent reports whether a header's failure is the object's own (it
// is remembered for the version) rather than the store's (tried again).
func permanent(err error) bool {
	var fe *fault.Error
	if errors.As(err, &fe) {
		s := fe.HTTPStatus()
		return s != 502 && s != 503 && s != 504
	}
	return false
}

func (h *Host) readHeader(ctx context.Context, src source, hd *head) (describe.Header, error) {
	if src.dir != "" {
		d, err := describe.Pyramid(src.obj.Head)
		if err != nil {
			return describe.Header{}, fault.Wrap(fault.Internal, err, msgInfoBroken)
		}
		return d, nil
	}
	hd.held.add(0, src.obj.Head)
	info, err := probe.Read(h.reader(ctx, src.obj, hd), src.obj.Size)
	if err != nil {
		return describe.Header{}, headerError(err)
	}
	if len(info.Levels) == 0 {
		return describe.Header{}, fault.New(fault.Internal, msgDamaged)
	}
	switch info.Format {
	case probe.TIFF, probe.JPEG, probe.PNG:
	default:
		return describe.Header{}, fault.New(fault.NotImplemented, "the source image is in a format the edge worker does not read (%s); it reads pyramidal TIFFs with JPEG tiles, IIIF tile directories, and JPEG and PNG files", info.Format)
	}
	return describe.FromProbe(info), nil
}

func (h *Host) reader(ctx context.Context, obj Object, hd *head) *reader {
	return &reader{ctx: ctx, store: h.store, obj: obj, held: &hd.held}
}

// headerError maps a failure to describe a source as the native server
// does: an unknown format 501, a malformed header 500, a store's fault
// as it is, another failed read 502.
func headerError(err error) error {
	var se interface{ HTTPStatus() int }
	var fe *probe.FormatError
	switch {
	case errors.Is(err, probe.ErrUnknownFormat), errors.Is(err, probe.ErrSizeUnknown):
		return fault.Wrap(fault.NotImplemented, err, "the source image is in a format this server cannot read")
	case errors.As(err, &se), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &fe):
		return fault.Wrap(fault.Internal, err, msgDamaged)
	}
	return fault.Wrap(fault.BadGateway, err, "the source image could not be read")
}

// produce returns the image of plan p: stored bytes when p is exactly a
// stored tile or size, else rendered from the stored tiles under its
// region (or the whole flat file). Rendered images are kept in the cache
// under their ETag.
func (h *Host) produce(ctx context.Context, src source, hdr describe.Header, p *plan.Plan, etag string) ([]byte, string, error) {
	if hdr.Pyramid != nil && tiles.Unchanged(p, false) {
		if key, ok := hdr.Pyramid.Match(p.Region, p.Width, p.Height); ok {
			b, err := h.readTile(ctx, src.dir+"/"+key)
			return b, "MISS", err
		}
	}
	if h.cache != nil {
		if b, _, ok := h.cache.Get(ctx, etag); ok {
			return b, "HIT edge", nil
		}
	}
	var buf bytes.Buffer
	var err error
	switch {
	case hdr.Pyramid != nil:
		err = h.stitch(ctx, src.dir, hdr.Pyramid, p, &buf)
	case hdr.Info.Format == probe.TIFF:
		var b []byte
		if b, err = h.tiff(ctx, src.obj, hdr.Info, p, &buf); b != nil {
			buf.Reset()
			buf.Write(b)
		}
	default:
		err = h.flat(ctx, src.obj, hdr.Info, p, &buf)
	}
	if err != nil {
		return nil, "", err
	}
	if h.cache != nil {
		h.cache.Put(ctx, etag, buf.Bytes(), engine.ContentType(p.Format))
	}
	return buf.Bytes(), "MISS", nil
}

// stitch reads the tiles of the plan's level under its region and has
// the engine execute the plan on them, as the native server does.
func (h *Host) stitch(ctx context.Context, dir string, pyr *pyramid.Pyramid, p *plan.Plan, w *bytes.Buffer) error {
	sf := pyr.ScaleFactors[p.Level]
	span := pyr.Cover(sf, p.LevelRegion)
	if span.Cols*span.Rows == 0 {
		return fault.Wrap(fault.Internal, fmt.Errorf("edge: region %v outside level %d", p.LevelRegion, sf), "the image could not be processed")
	}
	if span.Cols*span.Rows > maxStitchTiles {
		return fault.New(fault.NotImplemented, "the region needs %d stored tiles, more than the %d this server joins for one image; ask for a smaller region or size", span.Cols*span.Rows, maxStitchTiles)
	}
	keys := pyr.Keys(span)
	data := make([][]byte, len(keys))
	err := parallel(ctx, len(keys), func(ctx context.Context, i int) error {
		b, err := h.readTile(ctx, dir+"/"+keys[i])
		data[i] = b
		return err
	})
	if err != nil {
		return err
	}
	m := engine.Mosaic{Across: span.Cols, TileWidth: pyr.TileWidth, TileHeight: pyr.TileHeight, Tiles: make([]engine.Tile, len(keys))}
	for i := range keys {
		r := pyr.TileRegion(sf, span.Col0+i%span.Cols, span.Row0+i/span.Cols)
		m.Tiles[i] = engine.Tile{Data: data[i], Width: ceilDiv(r.Dx(), sf), Height: ceilDiv(r.Dy(), sf)}
	}
	data = nil
	q := *p
	rect := pyr.Rect(span)
	q.LevelRegion = p.LevelRegion.Sub(rect.Min).Intersect(image.Rect(0, 0, rect.Dx(), rect.Dy()))
	return h.eng.RenderMosaic(ctx, m, &q, w)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// readTile reads a stored tile whole; a missing one is a fault of the
// source (500), a failing store keeps its status.
func (h *Host) readTile(ctx context.Context, key string) ([]byte, error) {
	b, _, err := h.store.Get(ctx, key, tiles.MaxTileBytes)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fault.Wrap(fault.Internal, err, msgTileMissing)
	case err != nil:
		return nil, storeError(err, msgTileRead)
	case len(b) == 0:
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("tile %s: empty", key), msgTileRead)
	}
	return b, nil
}

// parallel runs f for 0..n-1, fetchConcurrency at a time, and returns
// the first failure (the others are then cancelled).
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// jpegTiles reports whether a TIFF level is stored as the edge reads it:
// 8-bit JPEG tiles, interleaved, RGB, YCbCr or grey.
func jpegTiles(t *probe.TIFFLevel) bool {
	if t == nil || !t.Tiled() || t.Compression != 7 || t.PlanarConfig != 1 || t.BitsPerSample != 8 || t.SampleFormat != 1 {
		return false
	}
	return t.SamplesPerPixel == 3 && (t.Photometric == 2 || t.Photometric == 6) || t.SamplesPerPixel == 1 && t.Photometric == 1
}

// tiff answers a plan on a pyramidal TIFF: the stored tile with its JPEG
// tables spliced in when the plan is exactly one (returned as b, byte
// for byte what the native server sends), else the level's tiles under
// the region, each spliced, rendered as a mosaic.
func (h *Host) tiff(ctx context.Context, obj Object, info probe.Info, p *plan.Plan, w *bytes.Buffer) ([]byte, error) {
	hd := h.heads.get(obj)
	r := h.reader(ctx, obj, hd)
	if ref, ok := tiles.TIFFTile(info, p); ok {
		b, err := tiles.SpliceTIFF(ctx, r, ref)
		if !errors.Is(err, tiles.ErrNoPassthrough) {
			return b, err
		}
	}
	lv := info.Levels[p.Level]
	t := lv.TIFF
	if !jpegTiles(t) {
		return nil, fault.New(fault.NotImplemented, "this level of the TIFF is not stored in 8-bit JPEG tiles, which is all the edge worker reads; serve it with the native server or store it with iiifd ingest")
	}
	lr := p.LevelRegion
	tw, tl := t.TileWidth, t.TileLength
	col0, row0 := lr.Min.X/tw, lr.Min.Y/tl
	cols, rows := (lr.Max.X-1)/tw-col0+1, (lr.Max.Y-1)/tl-row0+1
	if cols*rows > maxStitchTiles {
		return nil, fault.New(fault.NotImplemented, "the region needs %d stored tiles, more than the %d this server joins for one image; ask for a smaller region or size", cols*rows, maxStitchTiles)
	}
	tables, err := t.JPEGTables(r)
	if err != nil {
		return nil, damaged(ctx, err)
	}
	across, _ := t.Grid()
	ranges := make([]probe.ByteRange, 0, cols*rows)
	for y := row0; y < row0+rows; y++ {
		rs, err := t.TileRanges(r, y*across+col0, cols)
		if err != nil {
			return nil, damaged(ctx, err)
		}
		ranges = append(ranges, rs...)
	}
	data, err := h.fetchRanges(ctx, obj, ranges)
	if err != nil {
		return nil, err
	}
	m := engine.Mosaic{Across: cols, TileWidth: tw, TileHeight: tl, Tiles: make([]engine.Tile, len(data))}
	for i, d := range data {
		// TIFF stores edge tiles at the full tile size: the mosaic is
		// whole tiles, a little larger than the level at its right and
		// bottom edges, where the region never reaches.
		b, err := tiles.SpliceJPEG(tables, d, t.Photometric == 2)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, fmt.Errorf("tile %d: %w", i, err), msgDamaged)
		}
		m.Tiles[i] = engine.Tile{Data: b, Width: tw, Height: tl}
	}
	data = nil
	q := *p
	q.LevelRegion = lr.Sub(image.Pt(col0*tw, row0*tl))
	return nil, h.eng.RenderMosaic(ctx, m, &q, w)
}

func damaged(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var se interface{ HTTPStatus() int }
	if errors.As(err, &se) {
		return err
	}
	return fault.Wrap(fault.Internal, err, msgDamaged)
}

// fetchRanges reads the stored tiles at ranges, joining neighbours into
// one range request (a row's tiles are usually adjacent in the file).
func (h *Host) fetchRanges(ctx context.Context, obj Object, ranges []probe.ByteRange) ([][]byte, error) {
	type group struct {
		off, end int64
		first, n int
	}
	var groups []group
	for i, br := range ranges {
		if br.Length <= 0 || br.Length > tiles.MaxTileBytes {
			return nil, fault.New(fault.Internal, msgDamaged)
		}
		end := br.Offset + br.Length
		if k := len(groups) - 1; k >= 0 && groups[k].first+groups[k].n == i &&
			br.Offset >= groups[k].end && br.Offset-groups[k].end <= coalesceGap && end-groups[k].off <= maxCoalesced {
			groups[k].end = end
			groups[k].n++
			continue
		}
		groups = append(groups, group{off: br.Offset, end: end, first: i, n: 1})
	}
	out := make([][]byte, len(ranges))
	err := parallel(ctx, len(groups), func(ctx context.Context, gi int) error {
		g := groups[gi]
		b, err := h.store.ReadRange(ctx, obj, g.off, g.end-g.off)
		if err != nil {
			return storeError(err, msgTileRead)
		}
		if int64(len(b)) != g.end-g.off {
			return fault.New(fault.BadGateway, "the source image could not be read")
		}
		for i := g.first; i < g.first+g.n; i++ {
			br := ranges[i]
			out[i] = b[br.Offset-g.off : br.Offset-g.off+br.Length]
		}
		return nil
	})
	return out, err
}

// flat renders a plan on a flat JPEG or PNG file, read whole.
func (h *Host) flat(ctx context.Context, obj Object, info probe.Info, p *plan.Plan, w *bytes.Buffer) error {
	if obj.Size > h.set.MaxFlatBytes {
		return fault.New(fault.NotImplemented, "the source image is a file of %d bytes without tiles; the edge worker reads such files up to %d bytes; store it as a tiled pyramid (iiifd ingest)", obj.Size, h.set.MaxFlatBytes)
	}
	b := obj.Head
	if int64(len(b)) < obj.Size {
		var err error
		if b, err = h.store.ReadRange(ctx, obj, 0, obj.Size); err != nil {
			return storeError(err, "the source image could not be read")
		}
	}
	in := engine.Input{Reader: bytes.NewReader(b), Size: int64(len(b)), Level: info.Levels[p.Level]}
	return h.eng.Render(ctx, in, p, w)
}
