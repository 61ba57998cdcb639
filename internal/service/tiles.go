package service

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"sync"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/tiles"
	"github.com/iiifd/iiifd/internal/tracing"
)

// Bounds on the work one request on a tile pyramid may cause.
const (
	// fetchConcurrency is how many tiles one request reads at once.
	fetchConcurrency = 8
	// maxStitchTiles bounds the tiles one stitched image is made of:
	// 8192 tiles of 256×256 are 537 megapixels of level, a little more
	// than the default 100-megapixel output limit can ask for.
	maxStitchTiles = 8192
)

// Public messages of tile pyramid failures; they name no key or path.
const (
	msgTileMissing = "a stored tile of the image is missing"
	msgTileRead    = "a stored tile of the image could not be read"
	msgInfoBroken  = "the stored description (info.json) of the image is damaged or unreadable"
)

// describePyramid reads and parses a pyramid's info.json, and describes
// the pyramid as the planner sees an image (describe.Pyramid).
func describePyramid(obj *source.Object) (header, error) {
	if obj.Size > pyramid.MaxInfoSize {
		return header{}, fault.Wrap(fault.Internal, fmt.Errorf("info.json of %d bytes", obj.Size), msgInfoBroken)
	}
	b := make([]byte, obj.Size)
	if _, err := obj.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && len(b) == int(obj.Size)) {
		return header{}, fault.Wrap(fault.Internal, err, msgInfoBroken)
	}
	d, err := describe.Pyramid(b)
	if err != nil {
		return header{}, fault.Wrap(fault.Internal, err, msgInfoBroken)
	}
	return header{info: d.Info, pyramid: d.Pyramid}, nil
}

// scaleFactors returns the scale factors info.json advertises with the
// tiling of level 0 (describe.ScaleFactors).
func scaleFactors(h header) []int { return describe.ScaleFactors(h.described()) }

// stitch reads the tiles of the plan's level under its region,
// concurrently, and has the renderer execute the plan on them.
func (s *Service) stitch(ctx context.Context, dir string, pyr *pyramid.Pyramid, p *plan.Plan, ov *engine.Overlay, w io.Writer) error {
	sf := pyr.ScaleFactors[p.Level]
	span := pyr.Cover(sf, p.LevelRegion)
	if span.Cols*span.Rows == 0 {
		return fault.Wrap(fault.Internal, fmt.Errorf("service: region %v outside level %d", p.LevelRegion, sf), "the image could not be processed")
	}
	if span.Cols*span.Rows > maxStitchTiles {
		return fault.New(fault.NotImplemented, "the region needs %d stored tiles, more than the %d this server joins for one image; ask for a smaller region or size", span.Cols*span.Rows, maxStitchTiles)
	}
	keys := pyr.Keys(span)
	fctx, sp := tracing.Start(ctx, "source.read", attribute.Int("iiifd.tiles", len(keys)))
	data, err := s.fetch(fctx, dir, keys)
	tracing.End(sp, err)
	if err != nil {
		return err
	}
	m := engine.Mosaic{Overlay: ov, Across: span.Cols, TileWidth: pyr.TileWidth, TileHeight: pyr.TileHeight, Tiles: make([]engine.Tile, len(keys))}
	for i := range keys {
		r := pyr.TileRegion(sf, span.Col0+i%span.Cols, span.Row0+i/span.Cols)
		m.Tiles[i] = engine.Tile{Data: data[i], Width: ceilDiv(r.Dx(), sf), Height: ceilDiv(r.Dy(), sf)}
	}
	// The plan's level region, moved into the pixels of the mosaic.
	q := *p
	origin := pyr.Rect(span).Min
	q.LevelRegion = p.LevelRegion.Sub(origin).Intersect(image.Rect(0, 0, pyr.Rect(span).Dx(), pyr.Rect(span).Dy()))
	return s.render.RenderMosaic(ctx, m, &q, w)
}

// fetch reads the objects dir/key for every key, at most fetchConcurrency
// at once, and stops at the first failure.
func (s *Service) fetch(ctx context.Context, dir string, keys []string) ([][]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([][]byte, len(keys))
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	for i, key := range keys {
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
			b, err := s.readTile(ctx, dir+"/"+key)
			if err != nil {
				cancel(err)
				return
			}
			out[i] = b
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// openTile opens a stored tile; a missing one is a fault of the source.
func (s *Service) openTile(ctx context.Context, key string) (*source.Object, error) {
	obj, err := s.src.Open(ctx, key)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, source.ErrNotFound) {
			return nil, fault.Wrap(fault.Internal, err, msgTileMissing)
		}
		// A store's own fault (unreachable 503, timeout 504, bad
		// answer 502) keeps its status.
		var fe *fault.Error
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, fault.Wrap(fault.Internal, err, msgTileRead)
	}
	return obj, nil
}

func (s *Service) readTile(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.openTile(ctx, key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if obj.Size > tiles.MaxTileBytes || obj.Size == 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("tile %s: %d bytes", key, obj.Size), msgTileRead)
	}
	b := make([]byte, obj.Size)
	if n, err := obj.ReadAt(b, 0); n < len(b) {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		var fe *fault.Error
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("tile %s: %w", key, err), msgTileRead)
	}
	return b, nil
}
