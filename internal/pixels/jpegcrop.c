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

int iiifd_jpeg_crop_top_left(const unsigned char *in, size_t len, int width,
	int height, unsigned char **out, size_t *outlen, char *err, size_t errlen)
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
	if (width < 1 || height < 1 || width > w || height > hgt) {
		char msg[96];
		snprintf(msg, sizeof msg, "crop %dx%d of a %dx%d JPEG", width, height, w, hgt);
		set_error(err, errlen, msg);
		tjDestroy(h);
		return -1;
	}
	tjtransform xf;
	memset(&xf, 0, sizeof xf);
	xf.r.x = 0;
	xf.r.y = 0;
	xf.r.w = width;
	xf.r.h = height;
	xf.op = TJXOP_NONE;
	// PERFECT refuses any crop that would not be exact rather than
	// trimming it silently; CROP keeps markers (the Adobe marker of RGB
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

int iiifd_jpeg_mosaic_crop(const unsigned char **tiles, const size_t *lens,
	const int *sizes, int n, int across, int tw, int th, int x, int y, int width, int height,
	int quality, int gray, unsigned char **out, size_t *outlen, char *err,
	size_t errlen)
{
	tjhandle d = tjInitDecompress();
	if (d == NULL) {
		set_error(err, errlen, tjGetErrorStr2(NULL));
		return -1;
	}
	if (gray == 2) {
		// As the tiles are: grey when the first one under the region is.
		int first = (y / th) * across + x / tw, w0, h0, s0, cs0;
		if (first >= n || tjDecompressHeader3(d, tiles[first], (unsigned long)lens[first], &w0, &h0, &s0, &cs0) != 0) {
			tjDestroy(d);
			return 1;
		}
		gray = cs0 == TJCS_GRAY;
	}
	int bands = gray ? 1 : 3;
	int pf = gray ? TJPF_GRAY : TJPF_RGB;
	unsigned char *region = tjAlloc(width * height * bands);
	unsigned char *tile = tjAlloc(tw * th * bands);
	int rc = -1;
	if (region == NULL || tile == NULL) {
		set_error(err, errlen, "out of memory");
		goto done;
	}
	int down = n / across;
	int c0 = x / tw, c1 = (x + width - 1) / tw;
	int r0 = y / th, r1 = (y + height - 1) / th;
	if (c1 >= across || r1 >= down) {
		set_error(err, errlen, "region outside the tiles");
		goto done;
	}
	for (int r = r0; r <= r1; r++) {
		for (int c = c0; c <= c1; c++) {
			int i = r * across + c;
			int w, h, subsamp, space;
			if (tjDecompressHeader3(d, tiles[i], (unsigned long)lens[i], &w, &h, &subsamp, &space) != 0) {
				set_error(err, errlen, tjGetErrorStr2(d));
				goto done;
			}
			if (space == TJCS_CMYK || space == TJCS_YCCK || ((space == TJCS_GRAY) != (gray != 0))) {
				rc = 1;
				goto done;
			}
			if (w != sizes[2 * i] || h != sizes[2 * i + 1]) {
				char msg[96];
				snprintf(msg, sizeof msg, "tile %d is %dx%d, want %dx%d", i, w, h, sizes[2 * i], sizes[2 * i + 1]);
				set_error(err, errlen, msg);
				goto done;
			}
			if (tjDecompress2(d, tiles[i], (unsigned long)lens[i], tile, w, w * bands, h, pf, 0) != 0) {
				set_error(err, errlen, tjGetErrorStr2(d));
				goto done;
			}
			// The part of the tile inside the region.
			int tx0 = c * tw, ty0 = r * th;
			int ax = x > tx0 ? x : tx0, ay = y > ty0 ? y : ty0;
			int bx = x + width < tx0 + w ? x + width : tx0 + w;
			int by = y + height < ty0 + h ? y + height : ty0 + h;
			if (ax >= bx || ay >= by) {
				set_error(err, errlen, "tile smaller than the grid says");
				goto done;
			}
			for (int yy = ay; yy < by; yy++)
				memcpy(region + ((size_t)(yy - y) * width + (ax - x)) * bands,
					tile + ((size_t)(yy - ty0) * w + (ax - tx0)) * bands,
					(size_t)(bx - ax) * bands);
		}
	}
	tjhandle e = tjInitCompress();
	if (e == NULL) {
		set_error(err, errlen, tjGetErrorStr2(NULL));
		goto done;
	}
	unsigned char *buf = NULL;
	unsigned long len = 0;
	int samp = gray ? TJSAMP_GRAY : quality < 90 ? TJSAMP_420 : TJSAMP_444;
	if (tjCompress2(e, region, width, width * bands, height, pf, &buf, &len, samp, quality, 0) != 0) {
		set_error(err, errlen, tjGetErrorStr2(e));
		if (buf != NULL)
			tjFree(buf);
		tjDestroy(e);
		goto done;
	}
	tjDestroy(e);
	*out = buf;
	*outlen = len;
	rc = 0;
done:
	if (region != NULL)
		tjFree(region);
	if (tile != NULL)
		tjFree(tile);
	tjDestroy(d);
	return rc;
}
