// jpegjoin.h declares the lossless JPEG join (jpegjoin.c): libjpeg's
// coefficient reader and writer, which move DCT blocks from stored tiles
// into one JPEG, never decoded to pixels nor quantised again.

#ifndef IIIFD_JPEGJOIN_H
#define IIIFD_JPEGJOIN_H

#include <stddef.h>

// iiifd_jpeg_join writes into *out (*outlen bytes, freed with
// iiifd_jpeg_join_free) the width×height at x,y of the image that the n
// JPEG tiles form, across to a row, row by row. The tiles must be coded
// alike (size, components, sampling, quantisation tables), their size
// and x,y multiples of the MCU. Returns 0, or -1 with a message in err.
int iiifd_jpeg_join(const unsigned char *const *tiles, const size_t *lens,
	int n, int across, int x, int y, int width, int height,
	unsigned char **out, size_t *outlen, char *err, size_t errlen);
void iiifd_jpeg_join_free(unsigned char *buf);

#endif
