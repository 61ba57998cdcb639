package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/output"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/plugin"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/prefetch"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/tiles"
	"github.com/iiifd/iiifd/internal/tracing"
)

// Job is an image request planned and ready to render: everything a
// response's headers need is known before any pixel is decoded. Its
// fields are set by Service.Image and only read afterwards; what a
// render finds out (where the bytes came from, how many) is in the
// Result that Render returns.
type Job struct {
	Plan        plan.Plan
	ContentType string
	ModTime     time.Time
	ETag        string // strong, quoted
	// Canonical is the canonical path of the request after the
	// identifier, e.g. "full/max/0/default.jpg".
	Canonical string
	// Passthrough says the response is a stored tile sent as it is
	// stored (or, for a JPEG-compressed TIFF, completed with the file's
	// JPEG tables), without decoding or encoding.
	Passthrough bool
	// Restricted says an access rule restricts the image: the response
	// is the client's only (Cache-Control: private).
	Restricted bool
	// Vary and ClientOnly say what the request's snapshot of the plugins
	// makes the response depend on (plugin.Snapshot.OverlayVary): header
	// names for Vary, and whether only the client may keep it. They come
	// from the snapshot that decided the response, never from plugins
	// loaded since.
	Vary       string
	ClientOnly bool

	obj    *source.Object
	closed bool
	s      *Service
	cache  *cache.Cache // nil: renders are not cached

	// The render strategy: stored bytes as they are (stored, set when
	// Passthrough), else pixels decoded and encoded by the engine from
	// the source file or from the tiles of a tile pyramid.
	stored *storedTile
	pixels pixelRender

	// overlay, when set, asks the overlay hook for an image to put over
	// the output, on a cache miss only.
	overlay func(ctx context.Context) (*engine.Overlay, error)
	// plugins is the request's snapshot of the plugins (nil without
	// any), which overlay calls; held until Close.
	plugins *plugin.Snapshot
}

// storedTile is the passthrough strategy: a stored tile read whole (a
// read error is then a clean error status, not a response cut short).
type storedTile struct {
	read func(ctx context.Context) ([]byte, error)
	// orElse, when set, renders the tile with the engine when the
	// stored bytes turn out not to be what their tags promised
	// (tiles.ErrNoPassthrough).
	orElse pixelRender
}

// pixelRender is a strategy that decodes and encodes pixels: it runs
// admitted, after fetching ahead what it will read.
type pixelRender interface {
	// prefetch fetches what the render of p will read before it is
	// admitted, holding the bytes in place; nil when there is nothing
	// to fetch ahead.
	prefetch(ctx context.Context, place *limit.Place, p *plan.Plan) (*prefetch.Reader, error)
	// encode executes p with overlay ov (may be nil), reading through
	// fetched when set, and writes the encoded image to w.
	encode(ctx context.Context, p *plan.Plan, ov *engine.Overlay, fetched *prefetch.Reader, w io.Writer) error
}

// fileRender renders an image file with the engine.
type fileRender struct {
	s   *Service
	obj *source.Object
	hdr probe.Info
	in  engine.Input
}

func (f *fileRender) prefetch(ctx context.Context, place *limit.Place, p *plan.Plan) (*prefetch.Reader, error) {
	if f.in.Reader == nil || f.hdr.Levels[p.Level].OpenSlide {
		// A local file: libvips reads it itself. A slide OpenSlide
		// reads: from a file only (see encode).
		return nil, nil
	}
	return prefetch.TIFF(ctx, f.s.heads, place, f.s.prefetchPerRender(), f.obj, f.hdr, p.Level, p.LevelRegion)
}

func (f *fileRender) encode(ctx context.Context, p *plan.Plan, ov *engine.Overlay, fetched *prefetch.Reader, w io.Writer) error {
	in := f.in
	in.Level = f.hdr.Levels[p.Level]
	in.Overlay = ov
	if fetched != nil {
		in.Reader = fetched
	}
	if in.Level.OpenSlide && in.Path == "" && f.obj.Local != nil {
		// OpenSlide reads files only: a remote slide is read from its
		// whole copy in the source cache.
		lf, err := f.obj.Local(ctx)
		if err != nil {
			return engine.ReadFault(err)
		}
		defer lf.Close()
		in = engine.Input{Path: fdPath(lf), Level: in.Level, Overlay: in.Overlay}
	}
	return f.s.render.Render(ctx, in, p, w)
}

// mosaicRender renders from the stored tiles of a tile pyramid, stitched.
type mosaicRender struct {
	s   *Service
	dir string
	pyr *pyramid.Pyramid
}

func (m *mosaicRender) prefetch(context.Context, *limit.Place, *plan.Plan) (*prefetch.Reader, error) {
	return nil, nil // the tiles are read whole by stitch, admitted
}

func (m *mosaicRender) encode(ctx context.Context, p *plan.Plan, ov *engine.Overlay, _ *prefetch.Reader, w io.Writer) error {
	return m.s.stitch(ctx, m.dir, m.pyr, p, ov, w)
}

// fileJob makes j render an image file with libvips, or pass a stored
// JPEG tile of a TIFF through when the plan is exactly that tile (edge
// tiles cut losslessly when the engine can, see JPEGCropper), or an
// unscaled part of one whose corner is on an MCU boundary (cut likewise,
// see tiles.TIFFCrop).
func (s *Service) fileJob(j *Job, hdr probe.Info) {
	f := &fileRender{s: s, obj: j.obj, hdr: hdr, in: pixelsInput(j.obj)}
	j.pixels = f
	cropper, canCrop := s.render.(JPEGCropper)
	// Unscaled plans only: scaled ones (thumbnails) gain nothing measured
	// yet from the tiles' bytes, and libvips shrinks the TIFF level.
	unscaled := j.Plan.Width == j.Plan.LevelRegion.Dx() && j.Plan.Height == j.Plan.LevelRegion.Dy()
	if block, ok := tiles.TIFFTiles(hdr, &j.Plan, maxBlockTiles); ok && unscaled && canCrop && j.obj.Path != "" {
		j.pixels = &tiffBlockRender{file: f, block: block, crop: cropper}
	}
	tile, ok := tiles.TIFFTile(hdr, &j.Plan)
	if !ok && canCrop {
		tile, ok = tiles.TIFFCrop(hdr, &j.Plan)
	}
	if !ok && j.overlay == nil {
		s.joinJob(j, hdr)
	}
	if !ok || j.overlay != nil || (tile.Cropped() && !canCrop) {
		return
	}
	j.Passthrough = true
	j.stored = &storedTile{orElse: j.pixels, read: func(ctx context.Context) ([]byte, error) {
		_, span := tracing.Start(ctx, "source.read", attribute.Bool("iiifd.passthrough", true))
		b, err := tiles.SpliceTIFF(ctx, prefetch.TileReader(ctx, s.heads, j.obj, hdr), tile)
		if err == nil && tile.Cropped() {
			// An edge tile or a part of a tile: cut from the stored
			// one without decoding.
			if b, err = cropper.CropJPEG(b, tile.Part()); err != nil {
				err = fmt.Errorf("%w: %w", tiles.ErrNoPassthrough, err)
			}
		}
		tracing.End(span, err)
		return b, err
	}}
}

// joinJob makes j send an unscaled region over several stored JPEG
// tiles of a TIFF level as their coefficients joined into one JPEG (see
// tiles.TIFFJoin), when the engine can join; the render j had is what
// answers when the tiles turn out not to be joinable.
func (s *Service) joinJob(j *Job, hdr probe.Info) {
	joiner, ok := s.render.(JPEGJoiner)
	if !ok {
		return
	}
	block, ok := tiles.TIFFJoin(hdr, &j.Plan, maxJoinTiles)
	if !ok {
		return
	}
	part := j.Plan.LevelRegion.Sub(block.Origin)
	j.Passthrough = true
	j.stored = &storedTile{orElse: j.pixels, read: func(ctx context.Context) ([]byte, error) {
		_, span := tracing.Start(ctx, "source.read", attribute.Bool("iiifd.passthrough", true),
			attribute.Int("iiifd.tiles", len(block.Tiles)))
		r := prefetch.TileReader(ctx, s.heads, j.obj, hdr)
		data := make([][]byte, len(block.Tiles))
		var err error
		for i, t := range block.Tiles {
			// Whole stored tiles, edge ones too: the join reads
			// only the blocks under the part.
			t.Width, t.Height = t.Level.TileWidth, t.Level.TileLength
			if data[i], err = tiles.SpliceTIFF(ctx, r, t); err != nil {
				break
			}
		}
		var b []byte
		if err == nil {
			b, err = joiner.JoinJPEG(data, block.Across, part)
		}
		if err != nil && ctx.Err() == nil {
			// The render reads the same tiles, and reports a source
			// that fails to read (502) as such.
			err = fmt.Errorf("%w: %w", tiles.ErrNoPassthrough, err)
		}
		tracing.End(span, err)
		return b, err
	}}
}

// maxJoinTiles bounds the stored tiles of a join: a join runs before
// admission, as passthrough does, so its memory (the tiles' coefficients
// and the output's, some 0.8 MB per 512-px tile) must stay near a stored
// tile's. Four is a tile of twice the stored size, on the grid.
const maxJoinTiles = 4

// maxBlockTiles bounds the stored tiles a render from a block of a TIFF
// level's JPEG tiles takes; a larger region is rendered from the TIFF.
const maxBlockTiles = 16

// tiffBlockRender renders from the stored JPEG tiles of a block of a
// local TIFF level, spliced into JPEGs (edge tiles cut losslessly), as
// from a tile pyramid: the engine does not open the TIFF, whose header
// the probe has read once for all requests. When the tiles turn out not
// to be what their tags promise, the file is rendered instead.
type tiffBlockRender struct {
	file  *fileRender
	block tiles.TIFFBlock
	crop  JPEGCropper
}

func (t *tiffBlockRender) prefetch(context.Context, *limit.Place, *plan.Plan) (*prefetch.Reader, error) {
	return nil, nil // local files only
}

func (t *tiffBlockRender) encode(ctx context.Context, p *plan.Plan, ov *engine.Overlay, fetched *prefetch.Reader, w io.Writer) error {
	f := t.file
	r := prefetch.TileReader(ctx, f.s.heads, f.obj, f.hdr)
	lv := t.block.Tiles[0].Level
	m := engine.Mosaic{Overlay: ov, Across: t.block.Across, TileWidth: lv.TileWidth, TileHeight: lv.TileLength,
		Tiles: make([]engine.Tile, len(t.block.Tiles))}
	for i, tt := range t.block.Tiles {
		data, err := tiles.SpliceTIFF(ctx, r, tt)
		if err == nil && tt.Cropped() {
			data, err = t.crop.CropJPEG(data, tt.Part())
			if err != nil {
				err = fmt.Errorf("%w: %w", tiles.ErrNoPassthrough, err)
			}
		}
		if errors.Is(err, tiles.ErrNoPassthrough) {
			return f.encode(ctx, p, ov, fetched, w) // nothing is written yet
		}
		if err != nil {
			return err
		}
		m.Tiles[i] = engine.Tile{Data: data, Width: tt.Width, Height: tt.Height}
	}
	q := *p
	q.LevelRegion = q.LevelRegion.Sub(t.block.Origin)
	return f.s.render.RenderMosaic(ctx, m, &q, w)
}

// pyramidJob makes j answer from the tile pyramid in the folder dir: the
// stored file as it is when the plan is exactly one (an aligned tile at a
// declared scale factor, or a stored size), else the tiles of the chosen
// level under the region, stitched and processed by the renderer.
func (s *Service) pyramidJob(j *Job, dir string, pyr *pyramid.Pyramid) {
	j.pixels = &mosaicRender{s: s, dir: dir, pyr: pyr}
	p := &j.Plan
	if !tiles.Unchanged(p, false) || j.overlay != nil {
		return
	}
	if key, ok := pyr.Match(p.Region, p.Width, p.Height); ok {
		j.Passthrough = true
		j.stored = &storedTile{read: func(ctx context.Context) ([]byte, error) {
			return s.readTile(ctx, dir+"/"+key)
		}}
	}
}

// prefetchPerRender is the bound of Config.PrefetchPerRender: 0 for none.
func (s *Service) prefetchPerRender() int64 {
	switch n := s.cfg.PrefetchPerRender; {
	case n == 0:
		return config.DefaultPrefetchPerRender
	case n < 0:
		return 0
	default:
		return n
	}
}

// Result is a rendered image, complete before its first byte is sent:
// a failure of the render is known before the response's status is.
// The caller sends Body and must Close the result.
type Result struct {
	// CacheStatus is "HIT <tier>" or "MISS".
	CacheStatus string
	// Size is the length of the body.
	Size int64

	body  io.Reader
	close func() error
	hit   *MemoryHit // the entry of the tier Peek reads that answered
}

// Body reads the image's bytes, once.
func (r *Result) Body() io.Reader { return r.body }

// Close releases what the body holds (memory counted in the admission
// budget, a temporary file, a cache entry's reader).
func (r *Result) Close() error {
	if r.close == nil {
		return nil
	}
	err := r.close()
	r.close = nil
	return err
}

// MemoryHit returns, when the result came from the memory tier, the
// handle of its entry; false otherwise (a miss, a lower tier, a stored
// tile).
func (r *Result) MemoryHit() (MemoryHit, bool) {
	if r.hit == nil {
		return MemoryHit{}, false
	}
	return *r.hit, true
}

// MemoryHit is an entry of the memory tier that answered a request: a
// repeat of the request can be answered from it without the pipeline,
// with Service.Peek.
type MemoryHit struct {
	key  cache.Key
	seen time.Time
}

// Seen is when the source version the entry derives from was read (see
// source.Object.Seen): a repeat answered from the entry is as fresh as
// the pipeline's answer only within the sources' reuse window after it.
func (h MemoryHit) Seen() time.Time { return h.seen }

// Peek returns the bytes of a memory hit's entry while the memory tier
// still has them, without allocating; the bytes are shared and read-only.
// An entry stands only for the source version its request saw: callers
// reuse a handle only within the window sources reuse metadata in
// (fs.OpenFor, remote MetaTTL) counted from MemoryHit.Seen, so that a
// replaced source is noticed as soon as through the pipeline.
func (s *Service) Peek(h MemoryHit) ([]byte, bool) {
	if s.cfg.Cache == nil {
		return nil, false
	}
	b, _, ok := s.cfg.Cache.Peek(h.key)
	return b, ok
}

// Render produces the image: from the cache when it holds it, else
// computed (once for all concurrent identical requests) into an output
// buffer and then into the cache. Pixel work waits for admission first;
// it fails with a 503 when the server is saturated. The worker slot and
// the render's memory are given back as soon as the image is encoded:
// sending the result to the client, at the client's pace, holds neither.
// Stored tiles passed through are read as they are, never cached twice.
func (j *Job) Render(ctx context.Context) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if j.stored != nil {
		return j.passthrough(ctx)
	}
	if j.cache == nil {
		return j.computed(ctx)
	}
	key := cache.Key{ID: j.obj.Key, Name: j.ETag}
	hit, fill, err := lookup(ctx, j.cache, key)
	if err != nil {
		return nil, err
	}
	if hit != nil {
		r := &Result{CacheStatus: "HIT " + hit.Tier, Size: hit.Size, body: hit.Body, close: hit.Body.Close}
		if hit.Tier == j.cache.PeekTier() {
			r.hit = &MemoryHit{key, j.obj.Seen}
		}
		return r, nil
	}
	defer fill.Abort()
	out, err := j.encode(ctx, j.pixels)
	if err != nil {
		if ctx.Err() == nil && !limit.Refused(err) {
			// The source or the plan failed, not the client nor the
			// admission queue: every waiter would fail the same way.
			fill.Fail(err)
		}
		return nil, err
	}
	// The cache is filled from the finished body, with no worker held,
	// before the client is sent anything: concurrent identical requests
	// waiting for this fill are answered at once, whatever this client's
	// pace.
	if _, err := io.Copy(fill, out.Reader()); err != nil {
		out.Close()
		return nil, err
	}
	commit(ctx, fill, cache.Meta{ContentType: j.ContentType, ETag: j.ETag, LastModified: j.ModTime})
	return bufferResult(out), nil
}

// passthrough reads the stored tile, or renders it when its bytes are not
// what its tags promised.
func (j *Job) passthrough(ctx context.Context) (*Result, error) {
	b, err := j.stored.read(ctx)
	if errors.Is(err, tiles.ErrNoPassthrough) && j.stored.orElse != nil {
		// Nothing is sent yet, so libvips can still do it, admitted as
		// any other render.
		out, err := j.encode(ctx, j.stored.orElse)
		if err != nil {
			return nil, err
		}
		return bufferResult(out), nil
	}
	if err != nil {
		return nil, err
	}
	return &Result{CacheStatus: "MISS", Size: int64(len(b)), body: bytes.NewReader(b)}, nil
}

// computed renders the image with no cache.
func (j *Job) computed(ctx context.Context) (*Result, error) {
	out, err := j.encode(ctx, j.pixels)
	if err != nil {
		return nil, err
	}
	return bufferResult(out), nil
}

func bufferResult(out *output.Buffer) *Result {
	return &Result{CacheStatus: "MISS", Size: out.Len(), body: out.Reader(), close: out.Close}
}

// encode runs the pixel render r into a new output buffer, admitted: a
// queue place first, then what it reads is fetched ahead, then a worker
// slot and the plan's memory, which are given back when it returns,
// before the buffer is sent anywhere. The caller must Close the buffer.
func (j *Job) encode(ctx context.Context, r pixelRender) (*output.Buffer, error) {
	s := j.s
	cost := Cost(&j.Plan)
	var place *limit.Place // nil: admitted without bounds
	if s.cfg.Admit != nil {
		// The queue place and the client's share first: a render the
		// server refuses is refused before it fetches anything.
		p, err := reserve(ctx, s.cfg.Admit)
		if err != nil {
			return nil, err
		}
		defer p.Release()
		place = p
	}
	// Fetched before admission: waiting for the store holds no worker
	// slot. The bytes are held in the place, within a share of the
	// memory budget, and count in the render's cost.
	fetched, err := r.prefetch(ctx, place, &j.Plan)
	if err != nil {
		return nil, err
	}
	if fetched != nil {
		// The tiles' bytes stay held past the place's release while a
		// read abandoned by the render may still reach them.
		defer fetched.Done()
	}
	if place != nil {
		if err := wait(ctx, place, cost); err != nil {
			return nil, err
		}
	}
	if cost >= trimCost {
		defer s.render.Trim()
	}
	var ov *engine.Overlay
	if j.overlay != nil {
		if ov, err = j.overlay(ctx); err != nil {
			return nil, err
		}
	}
	out := s.newOutput()
	if err := r.encode(ctx, &j.Plan, ov, fetched, out); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// newOutput returns an empty output buffer, its memory counted in the
// admission budget.
func (s *Service) newOutput() *output.Buffer {
	cfg := s.cfg.Output
	if s.cfg.Admit != nil {
		cfg.Budget = s.cfg.Admit
	}
	return output.New(cfg)
}

// Close releases the source and the request's snapshot of the plugins;
// later calls do nothing. A Result does not need its job: a response
// closes the job as soon as Render returns, so that a client receiving
// the image slowly holds no source open and no replaced plugin module.
func (j *Job) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	j.plugins.Release()
	return j.obj.Close()
}

// reserve takes a place in the admission queue without waiting, in a
// span when it is refused.
func reserve(ctx context.Context, a *limit.Admitter) (*limit.Place, error) {
	p, err := a.Reserve(ctx)
	if err != nil {
		_, span := tracing.Start(ctx, "admit")
		tracing.End(span, err)
	}
	return p, err
}

// wait waits for the admission of the work of place costing cost bytes
// besides those it holds, in a span.
func wait(ctx context.Context, place *limit.Place, cost int64) error {
	ctx, span := tracing.Start(ctx, "admit", attribute.Int64("iiifd.cost_bytes", cost))
	err := place.Wait(ctx, cost)
	tracing.End(span, err)
	return err
}
