// source.h declares the custom libvips source through which loaders read
// an io.ReaderAt on the Go side (reader.go).

#ifndef IIIFD_SOURCE_H
#define IIIFD_SOURCE_H

#include <stdint.h>
#include <vips/vips.h>

// iiifd_source_custom returns a new source whose read and seek signals
// call the Go callbacks with handle. When the source is finalised, on
// whichever thread drops the last reference, the Go side is told so that
// it can free handle.
VipsSource *iiifd_source_custom(uintptr_t handle);

#endif
