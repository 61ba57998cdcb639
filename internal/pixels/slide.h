// slide.h declares the C layer for whole-slide images read through
// libvips' OpenSlide loader (slide.c).

#ifndef IIIFD_SLIDE_H
#define IIIFD_SLIDE_H

#include <vips/vips.h>

// iiifd_load_slide opens level of the slide at path, or its associated
// image when associated is not NULL, for random access.
int iiifd_load_slide(const char *path, int level, const char *associated,
	VipsImage **out);
// iiifd_get_string returns the string metadata field of in, or NULL; the
// string belongs to in.
const char *iiifd_get_string(VipsImage *in, const char *field);
// iiifd_flatten_rgb flattens in's alpha onto the colour r, g, b.
int iiifd_flatten_rgb(VipsImage *in, VipsImage **out, double r, double g,
	double b);

#endif
