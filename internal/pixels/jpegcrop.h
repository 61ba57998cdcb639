// jpegcrop.h declares the lossless JPEG crop (jpegcrop.c): TurboJPEG's
// transform, which cuts a JPEG in the DCT domain, its coefficients copied,
// never decoded to pixels nor quantised again.

#ifndef IIIFD_JPEGCROP_H
#define IIIFD_JPEGCROP_H

#include <stddef.h>

// iiifd_jpeg_crop_top_left cuts the top-left width×height of the JPEG in
// (len bytes) into *out (*outlen bytes), which the caller frees with
// iiifd_jpeg_free. The crop starts at 0,0, which is on an MCU boundary, so
// it is exact. Returns 0, or -1 with a message in err.
int iiifd_jpeg_crop_top_left(const unsigned char *in, size_t len, int width,
	int height, unsigned char **out, size_t *outlen, char *err, size_t errlen);
void iiifd_jpeg_free(unsigned char *buf);

// iiifd_jpeg_mosaic_crop decodes the n JPEG tiles tiles[i] (lens[i] bytes,
// which must decode to sizes[2i]×sizes[2i+1] pixels;
// a grid across tiles wide, every tile tw×th but for the last column and
// row, no larger), copies the region x, y, width, height of the image they
// form and encodes it as a baseline JPEG of the given quality, chroma
// subsampled 4:2:0 below quality 90 as libvips does. Tiles the region
// does not touch are not decoded. gray is 1 for one grey band, 0 for
// RGB, 2 for what the tiles hold. Returns 0,
// 1 when a tile is of a kind this path leaves to libvips (CMYK, or grey
// and colour tiles mixed), or -1 with a message in err.
int iiifd_jpeg_mosaic_crop(const unsigned char **tiles, const size_t *lens,
	const int *sizes, int n, int across, int tw, int th, int x, int y, int width, int height,
	int quality, int gray, unsigned char **out, size_t *outlen, char *err,
	size_t errlen);

#endif
