package pixels

/*
#include <vips/vips.h>

static int
iiifd_flip(VipsImage *in, VipsImage **out, int vertical)
{
	return vips_flip(in, out, vertical ? VIPS_DIRECTION_VERTICAL : VIPS_DIRECTION_HORIZONTAL, NULL);
}

static int
iiifd_rot_angle(VipsImage *in, VipsImage **out, int quarter)
{
	VipsAngle a = quarter == 1 ? VIPS_ANGLE_D90 : quarter == 2 ? VIPS_ANGLE_D180 : VIPS_ANGLE_D270;
	return vips_rot(in, out, a, NULL);
}

// iiifd_drop_orientation copies in without its orientation tag, so that a
// saver does not write one for pixels already turned upright.
static int
iiifd_drop_orientation(VipsImage *in, VipsImage **out)
{
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_remove(*out, VIPS_META_ORIENTATION);
	return 0;
}
*/
import "C"

import (
	"os"

	"github.com/iiifd/iiifd/internal/probe"
)

// FileOrientation is the EXIF or TIFF orientation of the image file at
// path, as the header probe reads it; 1 when there is none or the probe
// cannot tell.
func FileOrientation(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 1
	}
	info, err := probe.Read(f, st.Size())
	if err != nil || info.Orientation < 1 || info.Orientation > 8 {
		return 1
	}
	return info.Orientation
}

// orient turns or mirrors img, the stored pixels of a crop, by the EXIF
// orientation o (see plan.Plan.Orientation), so that it is as shown:
// 2 mirrors, 3 turns 180°, 4 flips, 5 transposes (a quarter turn
// clockwise, then a mirror), 6 turns a quarter clockwise, 7 transverses
// (a quarter turn, then a flip), 8 turns a quarter anticlockwise.
func (r *render) orient(img *C.VipsImage, o int) *C.VipsImage {
	flip := func(img *C.VipsImage, vertical bool) *C.VipsImage {
		return r.step(img, "orient", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_flip(in, out, cBool(vertical))
		})
	}
	turn := func(img *C.VipsImage, quarters int) *C.VipsImage {
		return r.step(img, "orient", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_rot_angle(in, out, C.int(quarters))
		})
	}
	switch o {
	case 2:
		return flip(img, false)
	case 3:
		return turn(img, 2)
	case 4:
		return flip(img, true)
	case 5:
		return flip(turn(img, 1), false)
	case 6:
		return turn(img, 1)
	case 7:
		return flip(turn(img, 1), true)
	case 8:
		return turn(img, 3)
	}
	return img
}

// upright turns img as the orientation o says and drops its orientation
// tag, for savers: the pixels they write are as shown.
func (r *render) upright(img *C.VipsImage, o int) *C.VipsImage {
	img = r.orient(img, o)
	return r.step(img, "upright", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_drop_orientation(in, out)
	})
}
