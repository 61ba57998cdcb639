// slide.c: whole-slide images through libvips' OpenSlide loader.

#include "slide.h"

#include <stdint.h>
#include <openslide.h>

// Associated images are at most this many pixels: labels and macros are
// photographs of the glass, thumbnails a few hundred pixels.
#define MAX_ASSOCIATED_PIXELS (64 * 1024 * 1024)

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
