package pixels

import (
	"context"
	"io"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// Engine is the libvips engine with its encoder settings: what the
// request pipeline (service.Engine) renders with natively. Startup must
// have been called.
type Engine struct{ opt engine.EncodeOptions }

// NewEngine returns the libvips engine, encoding with opt.
func NewEngine(opt engine.EncodeOptions) Engine { return Engine{opt: opt} }

// Render reads in, executes p and writes the encoded image to w.
func (e Engine) Render(ctx context.Context, in engine.Input, p *plan.Plan, w io.Writer) error {
	return Render(ctx, in, p, e.opt, w)
}

// RenderMosaic executes p on the image that the tiles of m form and
// writes the encoded image to w.
func (e Engine) RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, w io.Writer) error {
	return RenderMosaic(ctx, m, p, e.opt, w)
}

// Header describes images that the pure-Go probe cannot size.
func (Engine) Header(ctx context.Context, in engine.Input) (probe.Info, error) {
	return HeaderOf(ctx, in)
}

// Formats lists the output formats this libvips build can write.
func (Engine) Formats() []iiif.Format { return Formats() }

// Trim hands memory freed by a large render back to the operating system.
func (Engine) Trim() { Trim() }
