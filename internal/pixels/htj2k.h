// htj2k.h declares the decoder of High-Throughput JPEG 2000 (Part 15)
// codestreams, a C interface over OpenJPH (htj2k.cpp). OpenJPEG, which
// libvips' jp2kload uses, decodes some HT codestreams into flat grey
// without reporting an error; OpenJPH is the reference Part 15 decoder.

#ifndef IIIFD_HTJ2K_H
#define IIIFD_HTJ2K_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>

#ifdef __cplusplus
extern "C" {
#endif

// iiifd_htj2k_load decodes the window x, y, width, height of the image a
// codestream reconstructs with skip resolution levels dropped, into a new
// memory image of 8 bits per sample (depth <= 8) or 16 (depths up to 16,
// scaled up to the full 16-bit range), one band per component. The window
// is clipped to the image; *ox, *oy receive where the clipped window
// starts. The codestream is the length bytes at data when data is not
// NULL, else it is read from the Go readerSource behind handle, from byte
// base on. Returns 0, or -1 with a message in err.
int iiifd_htj2k_load(const uint8_t *data, uintptr_t handle, int64_t base,
	int64_t length, int skip, int x, int y, int width, int height,
	VipsImage **out, int *ox, int *oy, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
