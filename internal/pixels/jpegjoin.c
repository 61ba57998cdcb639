// jpegjoin.c: see jpegjoin.h.

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

#include "jpegjoin.h"

// libjpeg reports errors through error_exit, which must not return: it
// jumps back to the join, which frees everything and fails.
struct join_error {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	char *msg;
	size_t msglen;
};

static void join_error_exit(j_common_ptr cinfo)
{
	struct join_error *e = (struct join_error *) cinfo->err;
	char buf[JMSG_LENGTH_MAX];

	(*cinfo->err->format_message)(cinfo, buf);
	if (e->msglen > 0) {
		strncpy(e->msg, buf, e->msglen - 1);
		e->msg[e->msglen - 1] = 0;
	}
	longjmp(e->jump, 1);
}

static void join_output_message(j_common_ptr cinfo)
{
	(void) cinfo; // warnings (a corrupt stream is an error below)
}

static void set_msg(char *err, size_t errlen, const char *msg)
{
	if (errlen > 0) {
		strncpy(err, msg, errlen - 1);
		err[errlen - 1] = 0;
	}
}

int iiifd_jpeg_join(const unsigned char *const *tiles, const size_t *lens,
	int n, int across, int x, int y, int width, int height,
	unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	// Everything the error path frees is reachable from here, and only
	// changed before any longjmp can happen after the change.
	struct jpeg_decompress_struct *src = calloc((size_t) (n > 0 ? n : 1), sizeof *src);
	jvirt_barray_ptr **coefs = calloc((size_t) (n > 0 ? n : 1), sizeof *coefs);
	struct jpeg_compress_struct dst;
	struct join_error jerr;
	unsigned char *volatile buf = NULL;
	unsigned long buflen = 0;
	volatile int created = 0, dst_created = 0;
	int ret = -1;

	*out = NULL;
	*outlen = 0;
	if (src == NULL || coefs == NULL || n < 1 || across < 1 || n % across != 0 || width < 1 || height < 1) {
		set_msg(err, errlen, "join: bad arguments");
		free(src);
		free(coefs);
		return -1;
	}
	memset(&jerr, 0, sizeof jerr);
	jerr.msg = err;
	jerr.msglen = errlen;
	if (setjmp(jerr.jump)) {
		goto done;
	}
	jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = join_error_exit;
	jerr.pub.output_message = join_output_message;

	for (int i = 0; i < n; i++) {
		src[i].err = &jerr.pub;
		jpeg_create_decompress(&src[i]);
		created = i + 1;
		jpeg_mem_src(&src[i], tiles[i], (unsigned long) lens[i]);
		jpeg_read_header(&src[i], TRUE);
		coefs[i] = jpeg_read_coefficients(&src[i]);
	}
	// Every tile must be coded alike: the same size, components,
	// sampling and quantisation, so that their coefficients are
	// interchangeable blocks of one image.
	struct jpeg_decompress_struct *s0 = &src[0];
	int tw = (int) s0->image_width, th = (int) s0->image_height;
	int mcuw = s0->max_h_samp_factor * DCTSIZE, mcuh = s0->max_v_samp_factor * DCTSIZE;
	for (int i = 1; i < n; i++) {
		struct jpeg_decompress_struct *s = &src[i];
		int same = (int) s->image_width == tw && (int) s->image_height == th &&
			s->num_components == s0->num_components &&
			s->jpeg_color_space == s0->jpeg_color_space &&
			s->max_h_samp_factor == s0->max_h_samp_factor &&
			s->max_v_samp_factor == s0->max_v_samp_factor;
		for (int c = 0; same && c < s->num_components; c++) {
			jpeg_component_info *a = &s0->comp_info[c], *b = &s->comp_info[c];
			same = a->h_samp_factor == b->h_samp_factor && a->v_samp_factor == b->v_samp_factor &&
				a->quant_table != NULL && b->quant_table != NULL &&
				memcmp(a->quant_table->quantval, b->quant_table->quantval,
					sizeof a->quant_table->quantval) == 0;
		}
		if (!same) {
			set_msg(err, errlen, "join: the tiles are not coded alike");
			goto done;
		}
	}
	int down = n / across;
	if (tw % mcuw != 0 || th % mcuh != 0 || x < 0 || y < 0 || x % mcuw != 0 || y % mcuh != 0 ||
		x + width > across * tw || y + height > down * th) {
		char msg[160];
		snprintf(msg, sizeof msg, "join: %dx%d at %d,%d of %dx%d tiles of %dx%d (MCU %dx%d)",
			width, height, x, y, across, down, tw, th, mcuw, mcuh);
		set_msg(err, errlen, msg);
		goto done;
	}

	dst.err = &jerr.pub;
	jpeg_create_compress(&dst);
	dst_created = 1;
	jpeg_mem_dest(&dst, (unsigned char **) &buf, &buflen);
	jpeg_copy_critical_parameters(s0, &dst);
	dst.image_width = (JDIMENSION) width;
	dst.image_height = (JDIMENSION) height;
	dst.optimize_coding = TRUE;
	jvirt_barray_ptr dcoef[MAX_COMPONENTS];
	for (int c = 0; c < dst.num_components; c++) {
		jpeg_component_info *ci = &dst.comp_info[c];
		// Blocks of this component in the output, rounded up to whole
		// MCUs, as libjpeg's transcoder reads them.
		JDIMENSION bw = (JDIMENSION) ((width * ci->h_samp_factor + mcuw - 1) / mcuw) * (JDIMENSION) ci->h_samp_factor;
		JDIMENSION bh = (JDIMENSION) ((height * ci->v_samp_factor + mcuh - 1) / mcuh) * (JDIMENSION) ci->v_samp_factor;
		// Not zeroed: every block is written below.
		dcoef[c] = (*dst.mem->request_virt_barray)((j_common_ptr) &dst, JPOOL_IMAGE, FALSE, bw, bh,
			(JDIMENSION) ci->v_samp_factor);
	}
	(*dst.mem->realize_virt_arrays)((j_common_ptr) &dst);
	for (int c = 0; c < dst.num_components; c++) {
		jpeg_component_info *ci = &dst.comp_info[c];
		jpeg_component_info *si = &s0->comp_info[c];
		// Blocks per tile and the region's corner, in this component's
		// blocks (whole numbers: tiles and corner are on the MCU grid).
		int tbw = tw / DCTSIZE * si->h_samp_factor / s0->max_h_samp_factor;
		int tbh = th / DCTSIZE * si->v_samp_factor / s0->max_v_samp_factor;
		int bx0 = x / DCTSIZE * si->h_samp_factor / s0->max_h_samp_factor;
		int by0 = y / DCTSIZE * si->v_samp_factor / s0->max_v_samp_factor;
		JDIMENSION bw = (JDIMENSION) ((width * ci->h_samp_factor + mcuw - 1) / mcuw) * (JDIMENSION) ci->h_samp_factor;
		JDIMENSION bh = (JDIMENSION) ((height * ci->v_samp_factor + mcuh - 1) / mcuh) * (JDIMENSION) ci->v_samp_factor;
		for (JDIMENSION r = 0; r < bh; r += (JDIMENSION) ci->v_samp_factor) {
			JBLOCKARRAY drows = (*dst.mem->access_virt_barray)((j_common_ptr) &dst, dcoef[c], r,
				(JDIMENSION) ci->v_samp_factor, TRUE);
			for (int k = 0; k < ci->v_samp_factor; k++) {
				int gy = by0 + (int) r + k;
				int trow = gy / tbh, ly = gy % tbh;
				// Runs of blocks from one tile's row at a time.
				for (JDIMENSION col = 0; col < bw;) {
					int gx = bx0 + (int) col;
					int tcol = gx / tbw, lx = gx % tbw;
					JDIMENSION run = (JDIMENSION) (tbw - lx);
					if (run > bw - col)
						run = bw - col;
					if (trow >= down || tcol >= across) {
						// Padding past the tiles: flat, never shown.
						memset(drows[k][col], 0, run * sizeof(JBLOCK));
					} else {
						int t = trow * across + tcol;
						JBLOCKARRAY srow = (*src[t].mem->access_virt_barray)((j_common_ptr) &src[t],
							coefs[t][c], (JDIMENSION) ly, 1, FALSE);
						memcpy(drows[k][col], srow[0][lx], run * sizeof(JBLOCK));
					}
					col += run;
				}
			}
		}
	}
	jpeg_write_coefficients(&dst, dcoef);
	jpeg_finish_compress(&dst);
	ret = 0;

done:
	if (dst_created)
		jpeg_destroy_compress(&dst);
	for (int i = 0; i < created; i++)
		jpeg_destroy_decompress(&src[i]);
	free(src);
	free(coefs);
	if (ret == 0) {
		*out = buf;
		*outlen = buflen;
	} else if (buf != NULL) {
		free(buf);
	}
	return ret;
}

void iiifd_jpeg_join_free(unsigned char *buf)
{
	free(buf);
}
