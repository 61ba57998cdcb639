// save.c implements save.h: thin wrappers, every choice is made in save.go.

#include "save.h"
#include "_cgo_export.h"

int
iiifd_tiffsave_pyramid(VipsImage *in, const char *path, int tile_size,
	int compression, int quality, int bigtiff)
{
	VipsForeignTiffCompression c;
	VipsForeignTiffPredictor predictor = VIPS_FOREIGN_TIFF_PREDICTOR_NONE;

	switch (compression) {
	case IIIFD_TIFF_JPEG:
		c = VIPS_FOREIGN_TIFF_COMPRESSION_JPEG;
		break;
	case IIIFD_TIFF_WEBP:
		c = VIPS_FOREIGN_TIFF_COMPRESSION_WEBP;
		break;
	case IIIFD_TIFF_DEFLATE:
		c = VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE;
		predictor = VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL;
		break;
	default:
		vips_error("iiifd", "unknown TIFF compression %d", compression);
		return -1;
	}
	// Pyramid levels as pages (libvips' default layout, which iiifd's
	// probe reads as levels); JPEG tiles stay YCbCr, libvips' default.
	return vips_tiffsave(in, path,
		"tile", TRUE,
		"tile_width", tile_size,
		"tile_height", tile_size,
		"pyramid", TRUE,
		"compression", c,
		"predictor", predictor,
		"Q", quality,
		"bigtiff", bigtiff,
		"strip", TRUE,
		NULL);
}

int
iiifd_dzsave_iiif3(VipsImage *in, const char *dir, int tile_size,
	const char *suffix)
{
	return vips_dzsave(in, dir,
		"layout", VIPS_FOREIGN_DZ_LAYOUT_IIIF3,
		"tile_size", tile_size,
		"overlap", 0,
		"depth", VIPS_FOREIGN_DZ_DEPTH_ONETILE,
		"suffix", suffix,
		"strip", TRUE,
		NULL);
}

static void
iiifd_on_eval(VipsImage *image, VipsProgress *progress, gpointer handle)
{
	iiifdGoProgress((uintptr_t) handle, progress->percent,
		progress->npels, progress->tpels);
}

void
iiifd_watch_progress(VipsImage *in, uintptr_t handle)
{
	vips_image_set_progress(in, TRUE);
	g_signal_connect(in, "eval", G_CALLBACK(iiifd_on_eval),
		(gpointer) handle);
}

int
iiifd_decode_all(VipsImage *in)
{
	double avg;

	// vips_avg reads every pixel once, top to bottom, keeping nothing:
	// a full decode pass whose only output is whether it failed.
	return vips_avg(in, &avg, NULL);
}
