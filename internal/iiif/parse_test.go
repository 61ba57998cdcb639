package iiif

import (
	"errors"
	"strings"
	"testing"
)

// split parses a "region/size/rotation/quality.format" path.
func split(t testing.TB, v Version, path string) (Request, error) {
	t.Helper()
	seg := strings.Split(path, "/")
	if len(seg) != 4 {
		t.Fatalf("bad test path %q", path)
	}
	return ParseImage(v, seg[0], seg[1], seg[2], seg[3])
}

func TestParseValid(t *testing.T) {
	px := func(x, y, w, h float64) Region { return Region{Kind: RegionPixels, X: x, Y: y, W: w, H: h} }
	pct := func(x, y, w, h float64) Region { return Region{Kind: RegionPercent, X: x, Y: y, W: w, H: h} }
	full := Region{Kind: RegionFull}
	max := Size{Kind: SizeMax}
	tests := []struct {
		v    Version
		path string
		want Request
		out  string // String(), when it differs from path
	}{
		// 3.0 §2.1 and §4.1 examples.
		{V3, "full/max/0/default.jpg", Request{Region: full, Size: max, Quality: "default", Format: "jpg"}, ""},
		{V3, "square/max/0/default.jpg", Request{Region: Region{Kind: RegionSquare}, Size: max, Quality: "default", Format: "jpg"}, ""},
		{V3, "125,15,120,140/max/0/default.jpg", Request{Region: px(125, 15, 120, 140), Size: max, Quality: "default", Format: "jpg"}, ""},
		{V3, "pct:41.6,7.5,40,70/max/0/default.jpg", Request{Region: pct(41.6, 7.5, 40, 70), Size: max, Quality: "default", Format: "jpg"}, ""},
		{V3, "125,15,200,200/max/0/default.jpg", Request{Region: px(125, 15, 200, 200), Size: max, Quality: "default", Format: "jpg"}, ""},
		{V3, "pct:41.6,7.5,66.6,100/max/0/default.jpg", Request{Region: pct(41.6, 7.5, 66.6, 100), Size: max, Quality: "default", Format: "jpg"}, ""},
		// 3.0 §4.2 examples, every size form with and without ^.
		{V3, "full/^max/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeMax, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/150,/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeWidth, W: 150}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/^360,/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeWidth, W: 360, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/,150/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeHeight, H: 150}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/^,240/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeHeight, H: 240, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/pct:50/0/default.jpg", Request{Region: full, Size: Size{Kind: SizePercent, Percent: 50}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/^pct:120/0/default.jpg", Request{Region: full, Size: Size{Kind: SizePercent, Percent: 120, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/225,100/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeExact, W: 225, H: 100}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/^360,360/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeExact, W: 360, H: 360, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/!225,100/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeBestFit, W: 225, H: 100}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/^!360,360/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeBestFit, W: 360, H: 360, Upscale: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/pct:100/0/default.jpg", Request{Region: full, Size: Size{Kind: SizePercent, Percent: 100}, Quality: "default", Format: "jpg"}, ""},
		// 3.0 §4.3 examples.
		{V3, "full/max/180/default.jpg", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 180}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/max/90/default.jpg", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 90}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/max/22.5/default.png", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 22.5}, Quality: "default", Format: "png"}, ""},
		{V3, "full/max/!0/default.jpg", Request{Region: full, Size: max, Rotation: Rotation{Mirror: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/max/!180/default.jpg", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 180, Mirror: true}, Quality: "default", Format: "jpg"}, ""},
		{V3, "full/max/360/default.jpg", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 360}, Quality: "default", Format: "jpg"}, ""},
		// 3.0 §4.4 and §4.5 examples.
		{V3, "full/max/0/color.jpg", Request{Region: full, Size: max, Quality: "color", Format: "jpg"}, ""},
		{V3, "full/max/0/gray.jpg", Request{Region: full, Size: max, Quality: "gray", Format: "jpg"}, ""},
		{V3, "full/max/0/bitonal.jpg", Request{Region: full, Size: max, Quality: "bitonal", Format: "jpg"}, ""},
		{V3, "full/max/0/default.tif", Request{Region: full, Size: max, Quality: "default", Format: "tif"}, ""},
		// 3.0 §4.6 and §9 examples.
		{V3, "125,15,120,140/90,/!345/gray.jpg", Request{Region: px(125, 15, 120, 140), Size: Size{Kind: SizeWidth, W: 90}, Rotation: Rotation{Degrees: 345, Mirror: true}, Quality: "gray", Format: "jpg"}, ""},
		{V3, "0,10,100,200/pct:50/90/default.png", Request{Region: px(0, 10, 100, 200), Size: Size{Kind: SizePercent, Percent: 50}, Rotation: Rotation{Degrees: 90}, Quality: "default", Format: "png"}, ""},
		{V3, "pct:10,10,80,80/50,/22.5/color.jpg", Request{Region: pct(10, 10, 80, 80), Size: Size{Kind: SizeWidth, W: 50}, Rotation: Rotation{Degrees: 22.5}, Quality: "color", Format: "jpg"}, ""},
		{V3, "full/max/270/gray.jpg", Request{Region: full, Size: max, Rotation: Rotation{Degrees: 270}, Quality: "gray", Format: "jpg"}, ""},
		// Lenient spellings the spec only discourages (SHOULD, not MUST).
		{V3, "pct:.5,0.50,050,10.0/pct:07/0.0/default.webp", Request{Region: pct(0.5, 0.5, 50, 10), Size: Size{Kind: SizePercent, Percent: 7}, Quality: "default", Format: "webp"}, "pct:0.5,0.5,50,10/pct:7/0/default.webp"},
		{V3, "007,0,1,1/max/90./default.avif", Request{Region: px(7, 0, 1, 1), Size: max, Rotation: Rotation{Degrees: 90}, Quality: "default", Format: "avif"}, "7,0,1,1/max/90/default.avif"},
		{V3, "999999999,0,1,1/999999999,/0.0000000001/default.heic", Request{Region: px(999999999, 0, 1, 1), Size: Size{Kind: SizeWidth, W: 999999999}, Rotation: Rotation{Degrees: 1e-10}, Quality: "default", Format: "heic"}, ""},

		// 2.1 examples: full and max, no ^.
		{V2, "full/full/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeMax, Full: true}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/max/0/default.jpg", Request{Region: full, Size: max, Quality: "default", Format: "jpg"}, ""},
		{V2, "square/full/0/default.jpg", Request{Region: Region{Kind: RegionSquare}, Size: Size{Kind: SizeMax, Full: true}, Quality: "default", Format: "jpg"}, ""},
		{V2, "pct:41.6,7.5,66.6,100/full/0/default.jpg", Request{Region: pct(41.6, 7.5, 66.6, 100), Size: Size{Kind: SizeMax, Full: true}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/150,/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeWidth, W: 150}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/,150/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeHeight, H: 150}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/pct:50/0/default.jpg", Request{Region: full, Size: Size{Kind: SizePercent, Percent: 50}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/pct:150/0/default.jpg", Request{Region: full, Size: Size{Kind: SizePercent, Percent: 150}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/225,100/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeExact, W: 225, H: 100}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/!225,100/0/default.jpg", Request{Region: full, Size: Size{Kind: SizeBestFit, W: 225, H: 100}, Quality: "default", Format: "jpg"}, ""},
		{V2, "full/full/22.5/default.png", Request{Region: full, Size: Size{Kind: SizeMax, Full: true}, Rotation: Rotation{Degrees: 22.5}, Quality: "default", Format: "png"}, ""},
		{V2, "full/full/!180/bitonal.gif", Request{Region: full, Size: Size{Kind: SizeMax, Full: true}, Rotation: Rotation{Degrees: 180, Mirror: true}, Quality: "bitonal", Format: "gif"}, ""},
		{V2, "full/400,/0/default.jp2", Request{Region: full, Size: Size{Kind: SizeWidth, W: 400}, Quality: "default", Format: "jp2"}, ""},
		{V2, "full/full/0/default.pdf", Request{Region: full, Size: Size{Kind: SizeMax, Full: true}, Quality: "default", Format: "pdf"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := split(t, tt.v, tt.path)
			if err != nil {
				t.Fatalf("v%d: %v", tt.v, err)
			}
			tt.want.Version = tt.v
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			out := tt.out
			if out == "" {
				out = tt.path
			}
			if s := got.String(); s != out {
				t.Errorf("String() = %q, want %q", s, out)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		v    Version
		path string
		part string
	}{
		// Regions.
		{V3, "/max/0/default.jpg", "region"},
		{V3, "Full/max/0/default.jpg", "region"},
		{V3, "FULL/max/0/default.jpg", "region"},
		{V3, "Square/max/0/default.jpg", "region"},
		{V3, "0,0,0,10/max/0/default.jpg", "region"}, // zero width: 400 per §4.1
		{V3, "0,0,10,0/max/0/default.jpg", "region"},
		{V3, "pct:0,0,0,10/max/0/default.jpg", "region"},
		{V3, "pct:0,0,10,0.0/max/0/default.jpg", "region"},
		{V3, "+1,0,10,10/max/0/default.jpg", "region"},
		{V3, "-1,0,10,10/max/0/default.jpg", "region"},
		{V3, "1e2,0,10,10/max/0/default.jpg", "region"},
		{V3, " 1,0,10,10/max/0/default.jpg", "region"},
		{V3, "1,0,10,10 /max/0/default.jpg", "region"},
		{V3, "1.5,0,10,10/max/0/default.jpg", "region"}, // pixels are integers
		{V3, "1,0,10/max/0/default.jpg", "region"},
		{V3, "1,0,10,10,5/max/0/default.jpg", "region"},
		{V3, "1,,10,10/max/0/default.jpg", "region"},
		{V3, ",,,/max/0/default.jpg", "region"},
		{V3, "1234567890,0,10,10/max/0/default.jpg", "region"},
		{V3, "0x10,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:/max/0/default.jpg", "region"},
		{V3, "pct:1,2,3/max/0/default.jpg", "region"},
		{V3, "pct:-1,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:+1,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:NaN,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:Inf,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:1e1,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:.,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:1..0,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct:0.12345678901,0,10,10/max/0/default.jpg", "region"}, // > 10 decimals
		{V3, "pct:10000000000,0,10,10/max/0/default.jpg", "region"},
		{V3, "PCT:0,0,10,10/max/0/default.jpg", "region"},
		{V3, "pct: 0,0,10,10/max/0/default.jpg", "region"},
		// Sizes, version 3.
		{V3, "full/full/0/default.jpg", "size"}, // full is gone in 3.0
		{V3, "full/^full/0/default.jpg", "size"},
		{V3, "full//0/default.jpg", "size"},
		{V3, "full/Max/0/default.jpg", "size"},
		{V3, "full/^/0/default.jpg", "size"},
		{V3, "full/^^max/0/default.jpg", "size"},
		{V3, "full/0,/0/default.jpg", "size"},
		{V3, "full/,0/0/default.jpg", "size"},
		{V3, "full/0,10/0/default.jpg", "size"},
		{V3, "full/^0,10/0/default.jpg", "size"},
		{V3, "full/!0,10/0/default.jpg", "size"},
		{V3, "full/!10,/0/default.jpg", "size"},
		{V3, "full/!,10/0/default.jpg", "size"},
		{V3, "full/!^10,10/0/default.jpg", "size"},
		{V3, "full/10/0/default.jpg", "size"},
		{V3, "full/,/0/default.jpg", "size"},
		{V3, "full/10,10,10/0/default.jpg", "size"},
		{V3, "full/-10,/0/default.jpg", "size"},
		{V3, "full/+10,/0/default.jpg", "size"},
		{V3, "full/10.5,/0/default.jpg", "size"},
		{V3, "full/1234567890,/0/default.jpg", "size"},
		{V3, "full/pct:0/0/default.jpg", "size"},
		{V3, "full/pct:0.0/0/default.jpg", "size"},
		{V3, "full/pct:/0/default.jpg", "size"},
		{V3, "full/pct:1e2/0/default.jpg", "size"},
		{V3, "full/pct:100.0000000001/0/default.jpg", "size"}, // above 100 needs ^
		// The spec's §4.2 example table writes ",^240" and "pct:120" under
		// the upscaling column; both contradict its normative form table
		// ("^,h"; pct:n "MUST NOT be greater than 100"), so they are 400.
		{V3, "full/,^240/0/default.jpg", "size"},
		{V3, "full/pct:120/0/default.jpg", "size"},
		// Sizes, version 2.
		{V2, "full/^max/0/default.jpg", "size"},
		{V2, "full/^150,/0/default.jpg", "size"},
		{V2, "full/^full/0/default.jpg", "size"},
		{V2, "full/Full/0/default.jpg", "size"},
		{V2, "full/0,/0/default.jpg", "size"},
		{V2, "full/pct:0/0/default.jpg", "size"},
		{V2, "full/!10,0/0/default.jpg", "size"},
		// Rotation.
		{V3, "full/max//default.jpg", "rotation"},
		{V3, "full/max/361/default.jpg", "rotation"},
		{V3, "full/max/360.0000000001/default.jpg", "rotation"},
		{V3, "full/max/-90/default.jpg", "rotation"},
		{V3, "full/max/+90/default.jpg", "rotation"},
		{V3, "full/max/NaN/default.jpg", "rotation"},
		{V3, "full/max/Inf/default.jpg", "rotation"},
		{V3, "full/max/1e2/default.jpg", "rotation"},
		{V3, "full/max/!/default.jpg", "rotation"},
		{V3, "full/max/!!90/default.jpg", "rotation"},
		{V3, "full/max/90!/default.jpg", "rotation"},
		{V3, "full/max/ 90/default.jpg", "rotation"},
		{V3, "full/max/0.12345678901/default.jpg", "rotation"},
		{V2, "full/full/400/default.jpg", "rotation"},
		// Quality and format.
		{V3, "full/max/0/default", "format"},
		{V3, "full/max/0/default.", "format"},
		{V3, "full/max/0/Default.jpg", "quality"},
		{V3, "full/max/0/native.jpg", "quality"}, // a 1.1 quality
		{V3, "full/max/0/grey.jpg", "quality"},
		{V3, "full/max/0/.jpg", "quality"},
		{V3, "full/max/0/default.JPG", "format"},
		{V3, "full/max/0/default.jpeg", "format"},
		{V3, "full/max/0/default.bmp", "format"},
		{V3, "full/max/0/default.jpg.png", "format"},
		{V2, "full/full/0/default.svg", "format"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, err := split(t, tt.v, tt.path)
			if err == nil {
				t.Fatalf("v%d: accepted as %+v", tt.v, r)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Part != tt.part {
				t.Errorf("part = %q, want %q (%v)", e.Part, tt.part, err)
			}
			if e.HTTPStatus() != 400 {
				t.Errorf("status = %d, want 400", e.HTTPStatus())
			}
			if !strings.Contains(err.Error(), tt.part) {
				t.Errorf("message %q does not name %q", err, tt.part)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	_, err := ParseImage(1, "full", "full", "0", "default.jpg")
	var e *Error
	if !errors.As(err, &e) || e.Part != "version" || e.HTTPStatus() != 400 {
		t.Fatalf("got %v", err)
	}
}

func TestErrorIsSafe(t *testing.T) {
	_, err := ParseImage(V3, "<script>alert('x')</script>\x00\n", "max", "0", "default.jpg")
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, bad := range []string{"<", ">", "'", "\x00", "\n"} {
		if strings.Contains(msg, bad) {
			t.Errorf("message %q contains %q", msg, bad)
		}
	}
	if !strings.HasPrefix(msg, "invalid region ") {
		t.Errorf("message %q does not start with the part", msg)
	}

	long := strings.Repeat("é", 1000)
	_, err = ParseImage(V3, long, "max", "0", "default.jpg")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if n := len([]rune(e.Value)); n > maxValueRunes+1 {
		t.Errorf("value kept %d runes", n)
	}
	if len(err.Error()) > 600 {
		t.Errorf("message is %d bytes long", len(err.Error()))
	}
}

func TestFormats(t *testing.T) {
	for _, f := range Formats() {
		if !f.Valid() || f.MediaType() == "" {
			t.Errorf("%s: not valid", f)
		}
	}
	if Format("bmp").Valid() || Format("").Valid() {
		t.Error("unknown format is valid")
	}
	if FormatJPG.MediaType() != "image/jpeg" || FormatPDF.MediaType() != "application/pdf" {
		t.Error("wrong media types")
	}
}
