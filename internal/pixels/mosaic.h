// mosaic.h declares the wrappers for assembling an image from encoded
// tiles held in memory (stored tiles of a tile pyramid).

#ifndef IIIFD_MOSAIC_H
#define IIIFD_MOSAIC_H

#include <stdlib.h>
#include <vips/vips.h>

// iiifd_source_from_bytes copies data into a source that owns the copy.
VipsSource *iiifd_source_from_bytes(const void *data, size_t length);
const char *iiifd_find_load_source(VipsSource *source);
int iiifd_load_source(const char *loader, VipsSource *source, int access,
	int fail_on, VipsImage **out);
int iiifd_arrayjoin(VipsImage **in, int n, int across, int hspacing,
	int vspacing, VipsImage **out);

#endif
