//go:build js && wasm

package main

import (
	"context"
	"io"

	"github.com/iiifd/iiifd/internal/edge"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// newEngine is TEMPORARY until the pure-Go engine is merged: it renders
// nothing (501), so that only stored tiles pass through.
func newEngine(opt engine.EncodeOptions) edge.Engine { return noEngine{} }

type noEngine struct{}

func (noEngine) Render(ctx context.Context, in engine.Input, p *plan.Plan, w io.Writer) error {
	return fault.New(fault.NotImplemented, "not rendered yet")
}
func (noEngine) RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, w io.Writer) error {
	return fault.New(fault.NotImplemented, "not rendered yet")
}
func (noEngine) Formats() []iiif.Format { return []iiif.Format{iiif.FormatJPG, iiif.FormatPNG} }
