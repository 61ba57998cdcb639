package web

import (
	"context"
	"strconv"

	"github.com/iiifd/iiifd/internal/presentation"
	"github.com/iiifd/iiifd/internal/probe"
)

// Slides is the part of the pipeline that knows whole-slide images'
// facts; the pipeline (service.Service) has it, and Images that lack it
// make manifests without slide metadata.
type Slides interface {
	Slide(ctx context.Context, id string) (*probe.SlideInfo, error)
}

// addSlide adds what a whole-slide image says about itself to its
// manifest: the scanner's vendor, objective power, microns per pixel and
// scan date as metadata, and its associated images (label, macro,
// thumbnail) as further canvases, each served under its own identifier.
// The manifest's ETag derives from the slide's info.json, which changes
// with the slide's bytes, so these facts need no validator of their own.
func (h *Handler) addSlide(ctx context.Context, img *presentation.Image) error {
	sl, ok := h.cfg.Images.(Slides)
	if !ok {
		return nil
	}
	s, err := sl.Slide(ctx, img.ID)
	if err != nil || s == nil {
		return err
	}
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	add := func(label, value string) {
		if value != "" {
			img.Metadata = append(img.Metadata, presentation.Pair{Label: label, Value: value})
		}
	}
	add("Scanner vendor", s.Vendor)
	if s.Objective > 0 {
		add("Objective power", num(s.Objective)+"×")
	}
	if s.MPPX > 0 {
		mpp := num(s.MPPX)
		if s.MPPY > 0 && s.MPPY != s.MPPX {
			mpp += " × " + num(s.MPPY)
		}
		add("Microns per pixel", mpp)
	}
	add("Scan date", s.ScanDate)
	for _, a := range s.Associated {
		img.Parts = append(img.Parts, presentation.Image{
			ID: img.ID + ";" + a.Name, Label: a.Name, Width: a.Level.Width, Height: a.Level.Height, Format: "image/jpeg",
		})
	}
	return nil
}
