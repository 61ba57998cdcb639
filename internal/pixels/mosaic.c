// mosaic.c implements mosaic.h, thin wrappers like bridge.c.

#include "bridge.h"
#include "mosaic.h"

VipsSource *
iiifd_source_from_bytes(const void *data, size_t length)
{
	// The blob holds a copy, and the source (then the loader and its
	// image) hold references to the blob: the caller's memory is free to
	// go as soon as this returns, as cgo requires of Go memory.
	VipsBlob *blob = vips_blob_copy(data, length);
	VipsSource *source;

	if (!blob)
		return NULL;
	source = vips_source_new_from_blob(blob);
	vips_area_unref(VIPS_AREA(blob));
	return source;
}

const char *
iiifd_find_load_source(VipsSource *source)
{
	const char *name = vips_foreign_find_load_source(source);

	if (!name)
		return NULL;
	return vips_nickname_find(g_type_from_name(name));
}

int
iiifd_load_source(const char *loader, VipsSource *source, int access,
	int fail_on, VipsImage **out)
{
	return iiifd_load(loader, NULL, source, 0, -1, 0, 0, access, fail_on,
		out);
}

int
iiifd_arrayjoin(VipsImage **in, int n, int across, int hspacing,
	int vspacing, VipsImage **out)
{
	return vips_arrayjoin(in, out, n,
		"across", across,
		"hspacing", hspacing,
		"vspacing", vspacing,
		NULL);
}
