// slide.c: whole-slide images through libvips' OpenSlide loader.

#include "slide.h"

#include <stdint.h>
#include <stdio.h>
#include <openslide.h>

// Associated images are at most this many pixels: labels and macros are
// photographs of the glass, thumbnails a few hundred pixels.
#define MAX_ASSOCIATED_PIXELS (64 * 1024 * 1024)

// CHECK_TILE is the side of the regions iiifd_slide_check reads;
// CHECK_WHOLE the most pixels of a smallest level it reads whole.
#define CHECK_TILE 256
#define CHECK_WHOLE (4 * 1024 * 1024)

// allow_openslide lifts libvips' block of its OpenSlide loader (marked
// untrusted, as every untrusted loader is blocked at startup) the first
// time a slide is read. The Go side calls the loader only for files its
// probe or OpenSlide's own detection named a slide, never through
// libvips' loader search for a render.
static gpointer
allow_openslide(gpointer data)
{
	vips_operation_block_set("VipsForeignLoadOpenslide", FALSE);
	return NULL;
}

int
iiifd_load_slide(const char *path, int level, VipsImage **out)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, allow_openslide, NULL);
	// openslideload is flagged nocache, so the image belongs to this
	// render alone, as with iiifd_load. fail_on=error makes a tile
	// OpenSlide cannot read an error rather than a blank patch.
	return vips_openslideload(path, out,
		"level", level,
		"access", VIPS_ACCESS_RANDOM,
		"fail_on", VIPS_FAIL_ON_ERROR,
		NULL);
}

int
iiifd_associated_size(const char *path, const char *name, int64_t *w,
	int64_t *h)
{
	openslide_t *osr;

	*w = *h = -1;
	if (!(osr = openslide_open(path)))
		return -1;
	if (!openslide_get_error(osr))
		openslide_get_associated_image_dimensions(osr, name, w, h);
	openslide_close(osr);
	return *w > 0 && *h > 0 ? 0 : -1;
}

const char *
iiifd_get_string(VipsImage *in, const char *field)
{
	const char *s;

	// Strings and reference-counted strings both: libvips keeps the
	// OpenSlide properties as the latter.
	if (!vips_image_get_typeof(in, field) ||
		vips_image_get_string(in, field, &s)) {
		vips_error_clear();
		return NULL;
	}
	return s;
}

int
iiifd_flatten_rgb(VipsImage *in, VipsImage **out, double r, double g,
	double b)
{
	double bg[3] = { r, g, b };
	VipsArrayDouble *background = vips_array_double_new(bg, 3);
	int result = vips_flatten(in, out, "background", background, NULL);

	vips_area_unref(VIPS_AREA(background));
	return result;
}

// argb_to_rgb turns n premultiplied ARGB pixels into RGB over the
// background r, g, b, in place: each 4-byte pixel becomes 3 bytes at a
// lower or equal offset.
static void
argb_to_rgb(uint32_t *argb, int64_t n, int r, int g, int b)
{
	unsigned char *rgb = (unsigned char *) argb;
	int64_t i;

	for (i = 0; i < n; i++) {
		uint32_t p = argb[i];
		int na = 255 - (int) (p >> 24);

		rgb[3 * i] = ((p >> 16) & 0xff) + (r * na + 127) / 255;
		rgb[3 * i + 1] = ((p >> 8) & 0xff) + (g * na + 127) / 255;
		rgb[3 * i + 2] = (p & 0xff) + (b * na + 127) / 255;
	}
}

void *
iiifd_slide_open(const char *path)
{
	openslide_t *osr;
	const char *err;

	if (!(osr = openslide_open(path))) {
		vips_error("openslide", "%s", "not a slide OpenSlide reads");
		return NULL;
	}
	if ((err = openslide_get_error(osr))) {
		vips_error("openslide", "%s", err);
		openslide_close(osr);
		return NULL;
	}
	return osr;
}

void
iiifd_slide_close(void *osr)
{
	openslide_close((openslide_t *) osr);
}

static void
free_region(VipsImage *image, gpointer buf)
{
	g_free(buf);
}

int
iiifd_slide_region(void *handle, int level, int64_t x, int64_t y,
	int w, int h, int r, int g, int b, VipsImage **out)
{
	openslide_t *osr = handle;
	double ds = openslide_get_level_downsample(osr, level);
	uint32_t *argb;
	const char *err;

	if (ds <= 0 || w <= 0 || h <= 0) {
		vips_error("openslide", "no level %d", level);
		return -1;
	}
	if (!(argb = g_try_malloc((size_t) w * h * 4))) {
		vips_error("openslide", "out of memory");
		return -1;
	}
	// OpenSlide takes the position in level-0 pixels.
	openslide_read_region(osr, argb, (int64_t) (x * ds), (int64_t) (y * ds),
		level, w, h);
	if ((err = openslide_get_error(osr))) {
		vips_error("openslide", "%s", err);
		g_free(argb);
		return -1;
	}
	argb_to_rgb(argb, (int64_t) w * h, r, g, b);
	// The image takes the buffer over, without a copy, so that a region
	// costs 4 bytes a pixel, as the render's cost estimate charges.
	if (!(*out = vips_image_new_from_memory(argb, (size_t) w * h * 3, w, h, 3,
		VIPS_FORMAT_UCHAR))) {
		g_free(argb);
		return -1;
	}
	g_signal_connect(*out, "close", G_CALLBACK(free_region), argb);
	(*out)->Type = VIPS_INTERPRETATION_sRGB;
	return 0;
}

int
iiifd_load_associated(const char *path, const char *name, int r, int g,
	int b, VipsImage **out)
{
	openslide_t *osr;
	const char *err;
	int64_t w, h;
	uint32_t *argb;

	if (!(osr = openslide_open(path))) {
		vips_error("openslide", "%s", "not a slide OpenSlide reads");
		return -1;
	}
	if ((err = openslide_get_error(osr))) {
		vips_error("openslide", "%s", err);
		openslide_close(osr);
		return -1;
	}
	openslide_get_associated_image_dimensions(osr, name, &w, &h);
	if (w <= 0 || h <= 0 || w * h > MAX_ASSOCIATED_PIXELS) {
		vips_error("openslide", "no associated image %s of a size to read", name);
		openslide_close(osr);
		return -1;
	}
	if (!(argb = g_try_malloc(w * h * 4))) {
		vips_error("openslide", "out of memory");
		openslide_close(osr);
		return -1;
	}
	openslide_read_associated_image(osr, name, argb);
	if ((err = openslide_get_error(osr))) {
		vips_error("openslide", "%s", err);
		g_free(argb);
		openslide_close(osr);
		return -1;
	}
	openslide_close(osr);

	argb_to_rgb(argb, w * h, r, g, b);
	*out = vips_image_new_from_memory_copy(argb, w * h * 3, w, h, 3,
		VIPS_FORMAT_UCHAR);
	g_free(argb);
	if (!*out)
		return -1;
	(*out)->Type = VIPS_INTERPRETATION_sRGB;
	return 0;
}

// check_region reads the w×h pixels at x, y (level pixels) of level,
// clipped to the level, and returns OpenSlide's error, if any.
static const char *
check_region(openslide_t *osr, int level, int64_t x, int64_t y, int64_t w,
	int64_t h, uint32_t *buf)
{
	int64_t lw, lh;
	double ds;

	openslide_get_level_dimensions(osr, level, &lw, &lh);
	ds = openslide_get_level_downsample(osr, level);
	if (lw <= 0 || lh <= 0 || ds <= 0)
		return "a level without a size";
	if (x >= lw)
		x = lw - 1;
	if (y >= lh)
		y = lh - 1;
	if (w > lw - x)
		w = lw - x;
	if (h > lh - y)
		h = lh - y;
	openslide_read_region(osr, buf, (int64_t) (x * ds), (int64_t) (y * ds),
		level, w, h);
	return openslide_get_error(osr);
}

int
iiifd_slide_check(const char *path, char *msg, size_t len)
{
	openslide_t *osr;
	const char *const *names;
	const char *err = NULL;
	uint32_t *buf = NULL;
	int levels, i;

	msg[0] = 0;
	if (!openslide_detect_vendor(path))
		return 1;
	if (!(osr = openslide_open(path))) {
		snprintf(msg, len, "OpenSlide does not read it");
		return -1;
	}
	if ((err = openslide_get_error(osr)))
		goto done;
	// Every property, as the header reads some of them.
	for (names = openslide_get_property_names(osr); names && *names; names++)
		openslide_get_property_value(osr, *names);
	if ((levels = openslide_get_level_count(osr)) < 1) {
		err = openslide_get_error(osr);
		if (!err)
			err = "no levels";
		goto done;
	}
	if (!(buf = g_try_malloc(CHECK_TILE * CHECK_TILE * 4))) {
		err = "out of memory";
		goto done;
	}
	// A region at the start, the middle and the end of every level.
	for (i = 0; i < levels && !err; i++) {
		int64_t lw, lh;

		openslide_get_level_dimensions(osr, i, &lw, &lh);
		err = check_region(osr, i, 0, 0, CHECK_TILE, CHECK_TILE, buf);
		if (!err)
			err = check_region(osr, i, lw / 2, lh / 2, CHECK_TILE,
				CHECK_TILE, buf);
		if (!err)
			err = check_region(osr, i, MAX(lw - CHECK_TILE, 0),
				MAX(lh - CHECK_TILE, 0), CHECK_TILE, CHECK_TILE, buf);
	}
	// The smallest level whole, when small: thumbnails and the first
	// views of every viewer read it.
	if (!err) {
		int64_t lw, lh, x, y;

		openslide_get_level_dimensions(osr, levels - 1, &lw, &lh);
		if (lw > 0 && lh > 0 && lw * lh <= CHECK_WHOLE)
			for (y = 0; y < lh && !err; y += CHECK_TILE)
				for (x = 0; x < lw && !err; x += CHECK_TILE)
					err = check_region(osr, levels - 1, x, y,
						CHECK_TILE, CHECK_TILE, buf);
	}
	// The associated images whole, as they are served.
	for (names = openslide_get_associated_image_names(osr);
		!err && names && *names; names++) {
		int64_t w, h;
		uint32_t *a;

		openslide_get_associated_image_dimensions(osr, *names, &w, &h);
		if (w <= 0 || h <= 0 || w * h > MAX_ASSOCIATED_PIXELS)
			continue;
		if (!(a = g_try_malloc(w * h * 4))) {
			err = "out of memory";
			break;
		}
		openslide_read_associated_image(osr, *names, a);
		g_free(a);
		err = openslide_get_error(osr);
	}
done:
	if (err)
		snprintf(msg, len, "%s", err);
	g_free(buf);
	openslide_close(osr);
	return err ? -1 : 0;
}
