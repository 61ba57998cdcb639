// source.c implements source.h: signal handlers that forward to Go.

#include "source.h"
#include "_cgo_export.h"

static gint64
iiifd_on_read(VipsSourceCustom *source, void *buffer, gint64 length,
	gpointer handle)
{
	return iiifdGoRead((uintptr_t) handle, buffer, length);
}

static gint64
iiifd_on_seek(VipsSourceCustom *source, gint64 offset, int whence,
	gpointer handle)
{
	return iiifdGoSeek((uintptr_t) handle, offset, whence);
}

static void
iiifd_on_finalize(gpointer handle, GObject *gone)
{
	iiifdGoSourceGone((uintptr_t) handle);
}

VipsSource *
iiifd_source_custom(uintptr_t handle)
{
	VipsSourceCustom *source;

	if (!(source = vips_source_custom_new()))
		return NULL;
	g_signal_connect(source, "read",
		G_CALLBACK(iiifd_on_read), (gpointer) handle);
	g_signal_connect(source, "seek",
		G_CALLBACK(iiifd_on_seek), (gpointer) handle);
	g_object_weak_ref(G_OBJECT(source), iiifd_on_finalize, (gpointer) handle);
	return VIPS_SOURCE(source);
}
