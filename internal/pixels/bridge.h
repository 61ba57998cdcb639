// bridge.h declares the small C layer between Go and libvips. libvips'
// operations take optional arguments as NULL-terminated varargs, which cgo
// cannot call, so every operation iiifd uses gets a fixed-argument wrapper
// here. The header holds declarations only: files with //export may include
// it.

#ifndef IIIFD_BRIDGE_H
#define IIIFD_BRIDGE_H

#include <stdint.h>
#include <stdlib.h>
#include <vips/vips.h>

// Output formats; the Go side maps iiif.Format onto these.
enum {
	IIIFD_JPEG = 1,
	IIIFD_PNG,
	IIIFD_WEBP,
	IIIFD_GIF,
	IIIFD_TIFF,
	IIIFD_JP2,
	IIIFD_AVIF,
	IIIFD_HEIC
};

typedef struct {
	int quality;     // Q of lossy formats
	int effort;      // webp, gif, heif effort; -1 leaves libvips' default
	int compression; // png deflate level
	int bitdepth;    // png, gif: bits per sample
	int optimize;    // jpeg: optimise Huffman tables (buffers the output)
	int filter;      // png: row filter, a VipsForeignPngFilter
} iiifd_save_options;

int iiifd_init(const char *argv0, int forward_warnings);
void iiifd_configure(int concurrency, int cache_ops, size_t cache_mem,
	int cache_files, int leak);

// Loading.
const char *iiifd_find_load(const char *path);
// iiifd_load reads the file path, or source when path is NULL.
int iiifd_load(const char *loader, const char *path, VipsSource *source,
	int page, int subifd, int shrink, double scale, int access, int fail_on,
	VipsImage **out);
int iiifd_has_icc(VipsImage *in);
int iiifd_get_int(VipsImage *in, const char *field, int fallback);

// Operations; each returns 0 on success and sets *out to a new reference.
int iiifd_extract_area(VipsImage *in, VipsImage **out, int left, int top,
	int width, int height);
int iiifd_extract_bands(VipsImage *in, VipsImage **out, int first, int n);
int iiifd_resize(VipsImage *in, VipsImage **out, double hscale,
	double vscale);
// iiifd_reduce_turned reduces by hshrink and vshrink with Lanczos-3, the
// horizontal reduction done as a vertical one on the image turned a
// quarter (see render.resize).
int iiifd_reduce_turned(VipsImage *in, VipsImage **out, double hshrink,
	double vshrink);
int iiifd_premultiply(VipsImage *in, VipsImage **out);
int iiifd_unpremultiply(VipsImage *in, VipsImage **out);
int iiifd_cast_uchar(VipsImage *in, VipsImage **out);
int iiifd_colourspace(VipsImage *in, VipsImage **out, int space);
int iiifd_icc_to_srgb(VipsImage *in, VipsImage **out);
int iiifd_flatten(VipsImage *in, VipsImage **out, double background);
int iiifd_flip_horizontal(VipsImage *in, VipsImage **out);
int iiifd_add_alpha(VipsImage *in, VipsImage **out);
int iiifd_scale_alpha(VipsImage *in, VipsImage **out, double factor);
int iiifd_composite_over(VipsImage *base, VipsImage *overlay,
	VipsImage **out, int x, int y);
int iiifd_rot(VipsImage *in, VipsImage **out, int angle);
int iiifd_rotate(VipsImage *in, VipsImage **out, double angle,
	double background);
int iiifd_embed(VipsImage *in, VipsImage **out, int x, int y, int width,
	int height, int extend, double background);
int iiifd_addalpha(VipsImage *in, VipsImage **out);
int iiifd_threshold(VipsImage *in, VipsImage **out);
int iiifd_copy_memory(VipsImage *in, VipsImage **out);
int iiifd_black(VipsImage **out, int width, int height, int bands);

// Saving. iiifd_save streams to a custom target whose signals call the Go
// callbacks with handle; iiifd_save_memory encodes into a blob, for
// encoders that seek back in their output (TIFF, JPEG 2000).
int iiifd_save(VipsImage *in, int format, iiifd_save_options *opt,
	uintptr_t handle);
int iiifd_save_memory(VipsImage *in, int format, iiifd_save_options *opt,
	VipsBlob **blob);
const void *iiifd_blob_data(VipsBlob *blob, size_t *length);
void iiifd_blob_unref(VipsBlob *blob);

// Statistics.
int iiifd_live_objects(void);

#endif
