// mosaic.c implements mosaic.h, thin wrappers like bridge.c.

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
	VipsOperation *op;
	VipsObject *object;

	if (!(op = vips_operation_new(loader)))
		return -1;
	object = VIPS_OBJECT(op);
	// Built outside the operation cache, as iiifd_load does.
	if (vips_object_set(object,
		"source", source,
		"access", access,
		"fail_on", fail_on,
		NULL) ||
		vips_object_build(object)) {
		vips_object_unref_outputs(object);
		g_object_unref(op);
		return -1;
	}
	g_object_get(op, "out", out, NULL);
	vips_object_unref_outputs(object);
	g_object_unref(op);
	return 0;
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
