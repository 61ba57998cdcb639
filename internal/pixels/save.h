// save.h declares the C side of writing whole pyramids (save.go): a
// pyramidal TIFF with vips_tiffsave, a IIIF level-0 tile directory with
// vips_dzsave, and progress reports through the image's "eval" signal.
// Declarations only, so that files with //export may include it.

#ifndef IIIFD_SAVE_H
#define IIIFD_SAVE_H

#include <stdint.h>
#include <vips/vips.h>

// Tile compressions of a pyramidal TIFF; the Go side maps its own
// Compression values onto these.
enum {
	IIIFD_TIFF_JPEG = 1,
	IIIFD_TIFF_WEBP,
	IIIFD_TIFF_DEFLATE
};

int iiifd_tiffsave_pyramid(VipsImage *in, const char *path, int tile_size,
	int compression, int quality, int bigtiff);
int iiifd_dzsave_iiif3(VipsImage *in, const char *dir, int tile_size,
	const char *suffix);

// iiifd_decode_all decodes every pixel of in and keeps none: a check
// that the source decodes to its end, made before a save that would
// crash on a failure part-way (see SavePyramid).
int iiifd_decode_all(VipsImage *in);

// iiifd_watch_progress turns on progress reports for computations of in
// (and of every image computed from it) and sends them to the Go callback
// iiifdGoProgress with handle.
void iiifd_watch_progress(VipsImage *in, uintptr_t handle);

#endif
