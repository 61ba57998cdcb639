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


#endif
