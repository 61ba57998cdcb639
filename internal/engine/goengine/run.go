package goengine

import (
	"context"
	"errors"
	"image"
	"io"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// run executes p on src, the level's pixels from the top of p's region
// (a mosaic's rows are the region already; a flat image's are cropped
// here), and encodes the result to w. The steps and their order are the
// native engine's: crop, quality, flatten for formats without alpha,
// resize, mirror, rotate, threshold for bitonal, fit, encode.
func (e *Engine) run(ctx context.Context, src rows, p *plan.Plan, w io.Writer) error {
	src = &ctxRows{ctx: ctx, src: src}
	alphaFormat := p.Format != iiif.FormatJPG
	src = newColourRows(src, p.Quality, alphaFormat)
	src = resize(src, p.Width, p.Height)
	if p.Mirror {
		_, _, b := src.size()
		wd, _, _ := src.size()
		src = &mirrorRows{src: src, buf: make([]uint8, wd*b)}
	}
	if p.Rotation != 0 {
		r, err := collect(src)
		if err != nil {
			return err
		}
		switch p.Rotation {
		case 90, 180, 270:
			src = newRot90Rows(r, int(p.Rotation))
		default:
			src = newRotateRows(r, p.Rotation, alphaFormat)
		}
	}
	if p.Quality == iiif.QualityBitonal {
		wd, _, b := src.size()
		src = &thresholdRows{src: src, buf: make([]uint8, wd*b)}
	}
	var bg uint8 = 255
	if alphaFormat {
		bg = 0
	}
	src = newEmbedRows(src, p.OutWidth, p.OutHeight, bg)
	_, _, b := src.size()
	oneBit := p.Quality == iiif.QualityBitonal && b == 1
	return encode(ctx, src, p.Format, e.opt, oneBit, w)
}

// cropRows reads rectangle r of a stream's rows.
type cropRows struct {
	src  rows
	r    image.Rectangle
	y    int
	bufB int
}

func newCropRows(src rows, r image.Rectangle) rows {
	w, h, b := src.size()
	r = r.Intersect(image.Rect(0, 0, w, h))
	if r == image.Rect(0, 0, w, h) {
		return src
	}
	return &cropRows{src: src, r: r, bufB: b}
}

func (c *cropRows) size() (int, int, int) { return c.r.Dx(), c.r.Dy(), c.bufB }

func (c *cropRows) next() ([]uint8, error) {
	for c.y < c.r.Min.Y {
		if _, err := c.src.next(); err != nil {
			return nil, err
		}
		c.y++
	}
	row, err := c.src.next()
	if err != nil {
		return nil, err
	}
	c.y++
	return row[c.r.Min.X*c.bufB : c.r.Max.X*c.bufB], nil
}

// asStatus reports whether err carries an HTTP status.
func asStatus(err error, target *interface{ HTTPStatus() int }) bool {
	return errors.As(err, target)
}

// watchedReader remembers the first failure of a source's reader other
// than its end, so that a decoder's error caused by a failed read is
// answered as a failed read (502, 504, or the reader's own fault).
type watchedReader struct {
	r   io.ReaderAt
	err error
}

func (w *watchedReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := w.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) && w.err == nil {
		w.err = err
	}
	return n, err
}
