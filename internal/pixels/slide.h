// slide.h declares the C layer for whole-slide images read through
// libvips' OpenSlide loader (slide.c).

#ifndef IIIFD_SLIDE_H
#define IIIFD_SLIDE_H

#include <stdint.h>
#include <vips/vips.h>

// iiifd_load_slide opens level of the slide at path for random access.
int iiifd_load_slide(const char *path, int level, VipsImage **out);
// iiifd_associated_size sets the size of the associated image name of the
// slide at path; -1 when it has none.
int iiifd_associated_size(const char *path, const char *name, int64_t *w,
	int64_t *h);
// iiifd_load_associated reads the associated image name of the slide at
// path whole, through OpenSlide's own API, as an RGB image flattened onto
// r, g, b. libvips 8.14's loader crashes reading associated images.
int iiifd_load_associated(const char *path, const char *name, int r, int g,
	int b, VipsImage **out);
// iiifd_slide_open opens the slide at path with OpenSlide, or returns
// NULL with the reason in vips' error buffer.
void *iiifd_slide_open(const char *path);
void iiifd_slide_close(void *osr);
// iiifd_slide_region reads the w×h pixels at x, y of level (x, y in the
// level's own pixels) of the open slide osr as an RGB image flattened
// onto r, g, b.
int iiifd_slide_region(void *osr, int level, int64_t x, int64_t y,
	int w, int h, int r, int g, int b, VipsImage **out);
// iiifd_get_string returns the string metadata field of in, or NULL; the
// string belongs to in.
const char *iiifd_get_string(VipsImage *in, const char *field);
// iiifd_flatten_rgb flattens in's alpha onto the colour r, g, b.
int iiifd_flatten_rgb(VipsImage *in, VipsImage **out, double r, double g,
	double b);

// iiifd_slide_check opens the slide at path with OpenSlide and reads what
// the server will: its properties, regions of every level (the smallest
// whole when small) and its associated images. It returns 0 when all went well, 1 when OpenSlide
// does not recognise the file as a slide, -1 with OpenSlide's error in
// msg (len bytes) otherwise. It is run in a child process (package
// slidecheck): a crash in OpenSlide ends that process only.
int iiifd_slide_check(const char *path, char *msg, size_t len);

#endif
