// jpegcrop.h declares the lossless JPEG crop (jpegcrop.c): TurboJPEG's
// transform, which cuts a JPEG in the DCT domain, its coefficients copied,
// never decoded to pixels nor quantised again.

#ifndef IIIFD_JPEGCROP_H
#define IIIFD_JPEGCROP_H

#include <stddef.h>

// iiifd_jpeg_crop cuts the width×height at x,y of the JPEG in (len bytes)
// into *out (*outlen bytes), which the caller frees with iiifd_jpeg_free.
// x and y must be on an MCU boundary (0,0 always is), so that the crop is
// exact. Returns 0, or -1 with a message in err.
int iiifd_jpeg_crop(const unsigned char *in, size_t len, int x, int y,
	int width, int height, unsigned char **out, size_t *outlen, char *err,
	size_t errlen);
void iiifd_jpeg_free(unsigned char *buf);


#endif
