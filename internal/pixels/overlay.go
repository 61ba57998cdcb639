package pixels

/*
#include "bridge.h"
*/
import "C"

import (
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
)

// overlay composites o over img, keeping img's bands: grey stays grey,
// an image without alpha stays without.
func (r *render) overlay(img *C.VipsImage, o *engine.Overlay, q iiif.Quality) *C.VipsImage {
	if r.err != nil || o == nil || o.Opacity <= 0 {
		return img
	}
	ov, err := r.loadBytes(o.PNG)
	if err != nil {
		r.err = err
		return img
	}
	ov = r.uchar(r.colourspace(ov, C.VIPS_INTERPRETATION_sRGB))
	if r.err == nil && !hasAlpha(ov) {
		ov = r.step(ov, "overlay alpha", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_add_alpha(in, out)
		})
	}
	if o.Opacity < 1 {
		ov = r.step(ov, "overlay opacity", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_scale_alpha(in, out, C.double(o.Opacity))
		})
	}
	if r.err != nil {
		return img
	}
	bands, alpha, grey := int(img.Bands), hasAlpha(img), isGray(img)
	out := r.step(img, "overlay", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_composite_over(in, ov, out, C.int(o.X), C.int(o.Y))
	})
	out = r.uchar(out)
	if r.err == nil && grey {
		out = r.colourspace(out, C.VIPS_INTERPRETATION_B_W)
	}
	if r.err == nil && !alpha {
		// The base was opaque, so the result is: drop its alpha.
		n := bands
		out = r.step(out, "overlay bands", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_extract_bands(in, out, 0, C.int(n))
		})
	}
	if r.err == nil && q == iiif.QualityBitonal {
		out = r.step(out, "threshold", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_threshold(in, out)
		})
	}
	return out
}
