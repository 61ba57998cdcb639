// slide.c: whole-slide images through libvips' OpenSlide loader.

#include "slide.h"

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
iiifd_load_slide(const char *path, int level, const char *associated,
	VipsImage **out)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, allow_openslide, NULL);
	// openslideload is flagged nocache, so the image belongs to this
	// render alone, as with iiifd_load. fail_on=error makes a tile OpenSlide cannot
	// read an error rather than a blank patch.
	if (associated)
		return vips_openslideload(path, out,
			"associated", associated,
			"access", VIPS_ACCESS_RANDOM,
			"fail_on", VIPS_FAIL_ON_ERROR,
			NULL);
	return vips_openslideload(path, out,
		"level", level,
		"access", VIPS_ACCESS_RANDOM,
		"fail_on", VIPS_FAIL_ON_ERROR,
		NULL);
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
