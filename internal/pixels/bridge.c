// bridge.c implements bridge.h. It stays a list of thin wrappers: every
// decision (which operation, which option) is made on the Go side.

#include "bridge.h"
#include "_cgo_export.h"

static int forward_warnings = 0;

static void
iiifd_log_handler(const gchar *domain, GLogLevelFlags level,
	const gchar *message, gpointer user_data)
{
	// libvips and the libraries under it (libtiff, libjpeg...) report
	// recoverable problems as GLib warnings in the "VIPS" domain. They go
	// to the Go side when asked for, and are dropped otherwise, instead of
	// being printed to stderr.
	if (forward_warnings && message)
		iiifdGoWarn((char *) message);
}

int
iiifd_init(const char *argv0, int forward)
{
	if (vips_init(argv0))
		return -1;

	// Loaders libvips marks as untrusted (ImageMagick, Matlab, FITS...)
	// are never run; iiifd also allow-lists its loaders on the Go side.
	// JPEG 2000 is among the untrusted ones, but serving it is part of
	// what an IIIF server is for: allow it back, knowingly.
	vips_block_untrusted_set(TRUE);
	vips_operation_block_set("VipsForeignLoadJp2k", FALSE);

	forward_warnings = forward;
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, iiifd_log_handler, NULL);

	return 0;
}

void
iiifd_configure(int concurrency, int cache_ops, size_t cache_mem,
	int cache_files, int leak)
{
	if (concurrency > 0)
		vips_concurrency_set(concurrency);
	vips_cache_set_max(cache_ops);
	vips_cache_set_max_mem(cache_mem);
	vips_cache_set_max_files(cache_files);
	vips_leak_set(leak);
}

const char *
iiifd_find_load(const char *path)
{
	const char *name = vips_foreign_find_load(path);
	if (!name)
		return NULL;
	// vips_foreign_find_load returns the type name (for example
	// "VipsForeignLoadJpegFile"); the nickname ("jpegload") does not depend
	// on which library backs the loader.
	return vips_nickname_find(g_type_from_name(name));
}

int
iiifd_load(const char *loader, const char *path, VipsSource *source,
	int page, int subifd, int shrink, double scale, int access, int fail_on,
	VipsImage **out)
{
	VipsOperation *op;
	VipsObject *object;

	if (!(op = vips_operation_new(loader)))
		return -1;
	object = VIPS_OBJECT(op);

	if (path ? vips_object_set(object, "filename", path, NULL) :
		vips_object_set(object, "source", source, NULL))
		goto fail;
	if (vips_object_set(object,
		"access", access,
		"fail_on", fail_on,
		NULL))
		goto fail;
	if (page > 0 && vips_object_set(object, "page", page, NULL))
		goto fail;
	if (subifd >= 0 && vips_object_set(object, "subifd", subifd, NULL))
		goto fail;
	if (shrink > 1 && vips_object_set(object, "shrink", shrink, NULL))
		goto fail;
	if (scale > 0 && scale != 1 &&
		vips_object_set(object, "scale", scale, NULL))
		goto fail;

	// Built outside the operation cache on purpose: the loaded image, and
	// so every image computed from it, belongs to this render alone, so
	// that killing it on cancellation cannot touch another request.
	if (vips_object_build(object))
		goto fail;

	g_object_get(op, "out", out, NULL);
	vips_object_unref_outputs(object);
	g_object_unref(op);
	return 0;

fail:
	vips_object_unref_outputs(object);
	g_object_unref(op);
	return -1;
}

int
iiifd_has_icc(VipsImage *in)
{
	return vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0;
}

int
iiifd_get_int(VipsImage *in, const char *field, int fallback)
{
	int v;

	if (vips_image_get_typeof(in, field) && !vips_image_get_int(in, field, &v))
		return v;
	return fallback;
}

int
iiifd_extract_area(VipsImage *in, VipsImage **out, int left, int top,
	int width, int height)
{
	return vips_extract_area(in, out, left, top, width, height, NULL);
}

int
iiifd_extract_bands(VipsImage *in, VipsImage **out, int first, int n)
{
	return vips_extract_band(in, out, first, "n", n, NULL);
}

int
iiifd_resize(VipsImage *in, VipsImage **out, double hscale, double vscale)
{
	return vips_resize(in, out, hscale,
		"vscale", vscale,
		"kernel", VIPS_KERNEL_LANCZOS3,
		NULL);
}

int
iiifd_reduce_turned(VipsImage *in, VipsImage **out, double hshrink,
	double vshrink)
{
	VipsImage *t[3] = { NULL, NULL, NULL };
	int ret = -1;

	if (!vips_reducev(in, &t[0], vshrink, "kernel", VIPS_KERNEL_LANCZOS3, NULL) &&
		!vips_rot(t[0], &t[1], VIPS_ANGLE_D90, NULL) &&
		!vips_reducev(t[1], &t[2], hshrink, "kernel", VIPS_KERNEL_LANCZOS3, NULL) &&
		!vips_rot(t[2], out, VIPS_ANGLE_D270, NULL))
		ret = 0;
	for (int i = 0; i < 3; i++)
		if (t[i])
			g_object_unref(t[i]);
	return ret;
}

int
iiifd_premultiply(VipsImage *in, VipsImage **out)
{
	return vips_premultiply(in, out, NULL);
}

int
iiifd_unpremultiply(VipsImage *in, VipsImage **out)
{
	return vips_unpremultiply(in, out, NULL);
}

int
iiifd_cast_uchar(VipsImage *in, VipsImage **out)
{
	return vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL);
}

int
iiifd_colourspace(VipsImage *in, VipsImage **out, int space)
{
	return vips_colourspace(in, out, (VipsInterpretation) space, NULL);
}

int
iiifd_icc_to_srgb(VipsImage *in, VipsImage **out)
{
	return vips_icc_transform(in, out, "srgb",
		"embedded", TRUE,
		"intent", VIPS_INTENT_RELATIVE,
		"depth", 8,
		NULL);
}

static VipsArrayDouble *
iiifd_background(int n, double v)
{
	double values[16];
	int i;

	if (n < 1)
		n = 1;
	if (n > 16)
		n = 16;
	for (i = 0; i < n; i++)
		values[i] = v;
	return vips_array_double_new(values, n);
}

int
iiifd_flatten(VipsImage *in, VipsImage **out, double background)
{
	VipsArrayDouble *bg = iiifd_background(in->Bands - 1, background);
	int r = vips_flatten(in, out, "background", bg, NULL);

	vips_area_unref(VIPS_AREA(bg));
	return r;
}

int
iiifd_flip_horizontal(VipsImage *in, VipsImage **out)
{
	return vips_flip(in, out, VIPS_DIRECTION_HORIZONTAL, NULL);
}

int
iiifd_rot(VipsImage *in, VipsImage **out, int angle)
{
	return vips_rot(in, out, (VipsAngle) angle, NULL);
}

int
iiifd_rotate(VipsImage *in, VipsImage **out, double angle, double background)
{
	VipsArrayDouble *bg = iiifd_background(in->Bands, background);
	VipsInterpolate *interp = vips_interpolate_new("bicubic");
	int r;

	if (!interp) {
		vips_area_unref(VIPS_AREA(bg));
		return -1;
	}
	r = vips_rotate(in, out, angle,
		"background", bg,
		"interpolate", interp,
		NULL);
	g_object_unref(interp);
	vips_area_unref(VIPS_AREA(bg));
	return r;
}

int
iiifd_embed(VipsImage *in, VipsImage **out, int x, int y, int width,
	int height, int extend, double background)
{
	VipsArrayDouble *bg = iiifd_background(in->Bands, background);
	int r = vips_embed(in, out, x, y, width, height,
		"extend", (VipsExtend) extend,
		"background", bg,
		NULL);

	vips_area_unref(VIPS_AREA(bg));
	return r;
}

int
iiifd_addalpha(VipsImage *in, VipsImage **out)
{
	return vips_addalpha(in, out, NULL);
}

int
iiifd_threshold(VipsImage *in, VipsImage **out)
{
	return vips_relational_const1(in, out,
		VIPS_OPERATION_RELATIONAL_MOREEQ, 128, NULL);
}

int
iiifd_copy_memory(VipsImage *in, VipsImage **out)
{
	VipsImage *m = vips_image_copy_memory(in);

	if (!m)
		return -1;
	*out = m;
	return 0;
}

int
iiifd_black(VipsImage **out, int width, int height, int bands)
{
	VipsImage *black;
	int r;

	if (vips_black(&black, width, height, "bands", bands, NULL))
		return -1;
	r = vips_copy(black, out,
		"interpretation", bands >= 3 ? VIPS_INTERPRETATION_sRGB :
			VIPS_INTERPRETATION_B_W,
		NULL);
	g_object_unref(black);
	return r;
}

static int
iiifd_save_to(VipsImage *in, VipsTarget *target, int format,
	iiifd_save_options *o)
{
	switch (format) {
	case IIIFD_JPEG:
		return vips_jpegsave_target(in, target,
			"Q", o->quality,
			"optimize_coding", o->optimize,
			"strip", TRUE,
			NULL);
	case IIIFD_PNG:
		return vips_pngsave_target(in, target,
			"compression", o->compression,
			"filter", o->filter,
			"bitdepth", o->bitdepth,
			"strip", TRUE,
			NULL);
	case IIIFD_WEBP:
		return vips_webpsave_target(in, target,
			"Q", o->quality,
			"effort", o->effort,
			"strip", TRUE,
			NULL);
	case IIIFD_GIF:
		return vips_gifsave_target(in, target,
			"effort", o->effort,
			"bitdepth", o->bitdepth,
			"strip", TRUE,
			NULL);
	case IIIFD_TIFF:
		return vips_tiffsave_target(in, target,
			"compression", VIPS_FOREIGN_TIFF_COMPRESSION_LZW,
			"predictor", VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL,
			"strip", TRUE,
			NULL);
	case IIIFD_JP2:
		return vips_jp2ksave_target(in, target,
			"Q", o->quality,
			"strip", TRUE,
			NULL);
	case IIIFD_AVIF:
		return vips_heifsave_target(in, target,
			"compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
			"Q", o->quality,
			"effort", o->effort,
			"bitdepth", 8,
			"strip", TRUE,
			NULL);
	case IIIFD_HEIC:
		return vips_heifsave_target(in, target,
			"compression", VIPS_FOREIGN_HEIF_COMPRESSION_HEVC,
			"Q", o->quality,
			"effort", o->effort,
			"bitdepth", 8,
			"strip", TRUE,
			NULL);
	}
	vips_error("iiifd", "unknown output format %d", format);
	return -1;
}

static gint64
iiifd_on_write(VipsTargetCustom *target, const void *data, gint64 length,
	gpointer handle)
{
	return iiifdGoWrite((uintptr_t) handle, (void *) data, length);
}

static int
iiifd_on_end(VipsTargetCustom *target, gpointer handle)
{
	return iiifdGoEnd((uintptr_t) handle);
}

int
iiifd_save(VipsImage *in, int format, iiifd_save_options *opt,
	uintptr_t handle)
{
	VipsTargetCustom *target;
	int r;

	if (!(target = vips_target_custom_new()))
		return -1;
	g_signal_connect(target, "write",
		G_CALLBACK(iiifd_on_write), (gpointer) handle);
	g_signal_connect(target, "end",
		G_CALLBACK(iiifd_on_end), (gpointer) handle);

	r = iiifd_save_to(in, VIPS_TARGET(target), format, opt);

	// Savers end their target; make sure the last buffered bytes are
	// flushed even if one does not.
	if (!r && !VIPS_TARGET(target)->ended)
		r = vips_target_end(VIPS_TARGET(target));

	g_object_unref(target);
	return r;
}

int
iiifd_save_memory(VipsImage *in, int format, iiifd_save_options *opt,
	VipsBlob **blob)
{
	VipsTarget *target;
	int r;

	*blob = NULL;
	if (!(target = vips_target_new_to_memory()))
		return -1;
	r = iiifd_save_to(in, target, format, opt);
	if (!r && !target->ended)
		r = vips_target_end(target);
	if (!r)
		g_object_get(target, "blob", blob, NULL);
	g_object_unref(target);
	if (!r && !*blob) {
		vips_error("iiifd", "encoder wrote no output");
		return -1;
	}
	return r;
}

const void *
iiifd_blob_data(VipsBlob *blob, size_t *length)
{
	return vips_blob_get(blob, length);
}

void
iiifd_blob_unref(VipsBlob *blob)
{
	vips_area_unref(VIPS_AREA(blob));
}

static void *
iiifd_count_object(VipsObject *object, void *a, void *b)
{
	int *n = (int *) a;

	*n += 1;
	return NULL;
}

int
iiifd_live_objects(void)
{
	int n = 0;

	vips_object_map((VipsSListMap2Fn) iiifd_count_object, &n, NULL);
	return n;
}

int
iiifd_add_alpha(VipsImage *in, VipsImage **out)
{
	return vips_bandjoin_const1(in, out, 255.0, NULL);
}

// iiifd_scale_alpha multiplies the last band (alpha) of an 8-bit image by
// factor, leaving the others as they are.
int
iiifd_scale_alpha(VipsImage *in, VipsImage **out, double factor)
{
	double a[16], b[16];
	int n = in->Bands;

	if (n < 1 || n > 16) {
		vips_error("iiifd", "%d bands", n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		a[i] = i == n - 1 ? factor : 1.0;
		b[i] = 0.0;
	}
	return vips_linear(in, out, a, b, n, "uchar", TRUE, NULL);
}

int
iiifd_composite_over(VipsImage *base, VipsImage *overlay, VipsImage **out,
	int x, int y)
{
	return vips_composite2(base, overlay, out, VIPS_BLEND_MODE_OVER,
		"x", x, "y", y, NULL);
}
