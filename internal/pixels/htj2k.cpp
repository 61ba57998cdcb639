// htj2k.cpp decodes High-Throughput JPEG 2000 codestreams with OpenJPH
// (see htj2k.h). OpenJPH reconstructs the image a line at a time, every
// component of a line in turn; lines above the window are decoded and
// dropped, and decoding stops after the window's last line. Resolution
// levels are dropped by the decoder itself (restrict_input_resolution), so
// their data is neither read nor decoded. Tiles left and right of the
// window are not avoided here: the Go side cuts a tiled codestream down to
// the tiles under the window before it gets here.

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <openjph/ojph_arch.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_message.h>
#include <openjph/ojph_params.h>

#include "htj2k.h"

// The Go callbacks of reader.go: read at the source's position, seek.
extern "C" int64_t iiifdGoRead(uintptr_t h, void *data, int64_t n);
extern "C" int64_t iiifdGoSeek(uintptr_t h, int64_t off, int whence);

namespace {

// failure is what OpenJPH's errors become: its default handler prints
// to stderr, which a server must not do on bad input.
struct failure : std::runtime_error {
	using std::runtime_error::runtime_error;
};

class throwing_error : public ojph::message_error {
public:
	void operator()(int code, const char *file, int line, const char *fmt, ...) override
	{
		char buf[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		(void)file;
		(void)line;
		char msg[300];
		snprintf(msg, sizeof msg, "openjph error 0x%x: %s", code, buf);
		throw failure(msg);
	}
};

class silent_warning : public ojph::message_warning {
public:
	void operator()(int, const char *, int, const char *, ...) override {}
};

class silent_info : public ojph::message_info {
public:
	void operator()(int, const char *, int, const char *, ...) override {}
};

throwing_error error_handler;
silent_warning warning_handler;
silent_info info_handler;

// The handlers are process-wide in OpenJPH; set them once, before the
// first decode, from a static initialiser.
struct handlers_setup {
	handlers_setup()
	{
		ojph::configure_error(&error_handler);
		ojph::configure_warning(&warning_handler);
		ojph::configure_info(&info_handler);
	}
} setup;

// go_infile reads the codestream through the Go readerSource, which
// serves small reads from windows read ahead and bounds every read by the
// render's context.
class go_infile : public ojph::infile_base {
public:
	go_infile(uintptr_t h, int64_t base, int64_t length) : h(h), base(base), length(length), pos(0) {}

	size_t read(void *ptr, size_t size) override
	{
		if (pos >= length)
			return 0;
		if ((int64_t)size > length - pos)
			size = (size_t)(length - pos);
		if (iiifdGoSeek(h, base + pos, SEEK_SET) < 0)
			throw failure("seek failed");
		int64_t n = iiifdGoRead(h, ptr, (int64_t)size);
		if (n < 0)
			throw failure("the source could not be read");
		pos += n;
		return (size_t)n;
	}

	int seek(ojph::si64 offset, enum infile_base::seek origin) override
	{
		int64_t p;
		switch (origin) {
		case OJPH_SEEK_SET:
			p = offset;
			break;
		case OJPH_SEEK_CUR:
			p = pos + offset;
			break;
		case OJPH_SEEK_END:
			p = length + offset;
			break;
		default:
			return -1;
		}
		if (p < 0)
			return -1;
		pos = p;
		return 0;
	}

	ojph::si64 tell() override { return pos; }
	bool eof() override { return pos >= length; }
	void close() override {}

private:
	uintptr_t h;
	int64_t base, length, pos;
};

void set_error(char *err, size_t errlen, const char *msg)
{
	if (errlen > 0) {
		strncpy(err, msg, errlen - 1);
		err[errlen - 1] = 0;
	}
}

// free_buffer releases the pixels of a memory image when libvips closes it.
void free_buffer(VipsImage *, void *buf)
{
	g_free(buf);
}

int decode(ojph::infile_base *file, int skip, int x, int y, int width, int height,
	VipsImage **out, int *ox, int *oy)
{
	ojph::codestream cs;
	cs.read_headers(file);
	ojph::param_siz siz = cs.access_siz();
	ojph::param_cod cod = cs.access_cod();
	if (skip < 0 || (ojph::ui32)skip > cod.get_num_decompositions())
		throw failure("reduction beyond the decomposition levels");
	cs.restrict_input_resolution((ojph::ui32)skip, (ojph::ui32)skip);
	int comps = (int)siz.get_num_components();
	if (comps < 1 || comps > 4)
		throw failure("not 1 to 4 components");
	int depth = (int)siz.get_bit_depth(0);
	for (int c = 0; c < comps; c++) {
		ojph::point d = siz.get_downsampling((ojph::ui32)c);
		if (d.x != 1 || d.y != 1 || siz.is_signed((ojph::ui32)c) ||
			(int)siz.get_bit_depth((ojph::ui32)c) != depth)
			throw failure("components subsampled, signed or of mixed depths");
	}
	if (depth < 1 || depth > 16)
		throw failure("bit depth beyond 16");
	int w = (int)siz.get_recon_width(0), h = (int)siz.get_recon_height(0);

	// Clip the window to the image.
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + width > w ? w : x + width, y1 = y + height > h ? h : y + height;
	if (x0 >= x1 || y0 >= y1)
		throw failure("window outside the image");
	int ww = x1 - x0, wh = y1 - y0;

	cs.create();
	int bps = depth <= 8 ? 1 : 2;
	size_t size = (size_t)ww * wh * comps * bps;
	unsigned char *buf = (unsigned char *)g_try_malloc(size);
	if (buf == NULL)
		throw failure("out of memory");
	const int32_t maxv = (1 << depth) - 1;
	const int shift = 16 - depth;
	try {
		// A planar codestream gives each component whole, one after
		// the other; an interleaved one gives each line's components
		// in turn.
		bool planar = cs.is_planar();
		int outer = planar ? comps : h, inner = planar ? h : comps;
		for (int i = 0; i < outer; i++) {
			for (int j = 0; j < inner; j++) {
				int row = planar ? j : i;
				if (row >= y1) {
					if (planar)
						break; // the rest of this component
					goto done;
				}
				ojph::ui32 comp;
				ojph::line_buf *line = cs.pull(comp);
				if (line == NULL || (int)comp >= comps)
					throw failure("the decoder gave no line");
				if (row < y0)
					continue;
				const int32_t *sp = line->i32 + x0;
				size_t at = ((size_t)(row - y0) * ww * comps + comp) * bps;
				if (bps == 1) {
					unsigned char *dp = buf + at;
					for (int k = 0; k < ww; k++, dp += comps) {
						int32_t v = sp[k];
						*dp = (unsigned char)(v < 0 ? 0 : v > maxv ? maxv : v);
					}
				} else {
					uint16_t *dp = (uint16_t *)(buf + at);
					for (int k = 0; k < ww; k++, dp += comps) {
						int32_t v = sp[k];
						v = v < 0 ? 0 : v > maxv ? maxv : v;
						*dp = (uint16_t)(v << shift);
					}
				}
			}
		}
	done:;
	} catch (...) {
		g_free(buf);
		throw;
	}
	cs.close();

	VipsImage *img = vips_image_new_from_memory(buf, size, ww, wh, comps,
		bps == 1 ? VIPS_FORMAT_UCHAR : VIPS_FORMAT_USHORT);
	if (img == NULL) {
		g_free(buf);
		throw failure("vips_image_new_from_memory failed");
	}
	g_signal_connect(img, "postclose", G_CALLBACK(free_buffer), buf);
	if (comps <= 2)
		img->Type = bps == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_GREY16;
	else
		img->Type = bps == 1 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_RGB16;
	*out = img;
	*ox = x0;
	*oy = y0;
	return 0;
}

} // namespace

extern "C" int iiifd_htj2k_load(const uint8_t *data, uintptr_t handle, int64_t base,
	int64_t length, int skip, int x, int y, int width, int height,
	VipsImage **out, int *ox, int *oy, char *err, size_t errlen)
{
	try {
		if (data != NULL) {
			ojph::mem_infile file;
			file.open(data, (size_t)length);
			return decode(&file, skip, x, y, width, height, out, ox, oy);
		}
		go_infile file(handle, base, length);
		return decode(&file, skip, x, y, width, height, out, ox, oy);
	} catch (const std::exception &e) {
		set_error(err, errlen, e.what());
	} catch (...) {
		set_error(err, errlen, "openjph: unknown failure");
	}
	return -1;
}
