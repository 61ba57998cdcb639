// jpegcrop.c: see jpegcrop.h.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "jpegcrop.h"

// TurboJPEG 2.1 optimises Huffman tables (as libvips does for the images
// iiifd renders directly) only when TJ_OPTIMIZE is set in the
// environment, which it reads on every compression. It is set here,
// before main and before any thread exists, unless the environment
// already says otherwise.
__attribute__((constructor)) static void iiifd_tj_optimize(void)
{
	setenv("TJ_OPTIMIZE", "1", 0);
}

static void set_error(char *err, size_t errlen, const char *msg)
{
	if (errlen > 0) {
		strncpy(err, msg, errlen - 1);
		err[errlen - 1] = 0;
	}
}

int iiifd_jpeg_crop(const unsigned char *in, size_t len, int x, int y,
	int width, int height, unsigned char **out, size_t *outlen, char *err,
	size_t errlen)
{
	tjhandle h = tjInitTransform();
	if (h == NULL) {
		set_error(err, errlen, tjGetErrorStr2(NULL));
		return -1;
	}
	int w, hgt, subsamp, space;
	if (tjDecompressHeader3(h, in, (unsigned long)len, &w, &hgt, &subsamp, &space) != 0) {
		set_error(err, errlen, tjGetErrorStr2(h));
		tjDestroy(h);
		return -1;
	}
	if (x < 0 || y < 0 || width < 1 || height < 1 || width > w - x || height > hgt - y) {
		char msg[128];
		snprintf(msg, sizeof msg, "crop %dx%d at %d,%d of a %dx%d JPEG", width, height, x, y, w, hgt);
		set_error(err, errlen, msg);
		tjDestroy(h);
		return -1;
	}
	tjtransform xf;
	memset(&xf, 0, sizeof xf);
	xf.r.x = x;
	xf.r.y = y;
	xf.r.w = width;
	xf.r.h = height;
	xf.op = TJXOP_NONE;
	// A crop whose corner is not on an MCU boundary is refused by
	// TurboJPEG, never moved; PERFECT refuses any other crop that would not
	// be exact rather than trimming it silently; CROP keeps markers (the Adobe marker of RGB
	// tiles is written again by libjpeg for the colour space it copies).
	xf.options = TJXOPT_CROP | TJXOPT_PERFECT;
	unsigned char *buf = NULL;
	unsigned long n = 0;
	if (tjTransform(h, in, (unsigned long)len, 1, &buf, &n, &xf, 0) != 0) {
		set_error(err, errlen, tjGetErrorStr2(h));
		if (buf != NULL)
			tjFree(buf);
		tjDestroy(h);
		return -1;
	}
	tjDestroy(h);
	*out = buf;
	*outlen = n;
	return 0;
}

void iiifd_jpeg_free(unsigned char *buf)
{
	tjFree(buf);
}
