package iiif

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseImage checks that ParseImage never panics, that every error is an
// *Error with a 4xx status naming its part, and that every Request it
// returns survives String and ParseImage unchanged.
func FuzzParseImage(f *testing.F) {
	seeds := [][4]string{
		{"full", "max", "0", "default.jpg"},
		{"square", "^max", "!90", "gray.png"},
		{"125,15,120,140", "90,", "!345", "gray.jpg"},
		{"pct:41.6,7.5,66.6,100", "^!360,360", "22.5", "color.webp"},
		{"pct:0.0000000001,0,100,100", "pct:99.9999999999", "359.9999999999", "bitonal.tif"},
		{"0,0,0,10", "0,", "361", "default"},
		{"full", "full", "0", "default.jpg"},
		{"999999999,999999999,999999999,999999999", "^999999999,999999999", "360", "default.heic"},
		{"pct:9999999999.9999999999,0,1,1", "^pct:1000000000", ".5", "default.avif"},
		{"+1,-1,1e3,NaN", "^^,", "!!", ".."},
	}
	for _, s := range seeds {
		f.Add(uint8(3), s[0], s[1], s[2], s[3])
		f.Add(uint8(2), s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, v uint8, region, size, rotation, qf string) {
		r, err := ParseImage(Version(v), region, size, rotation, qf)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if s := e.HTTPStatus(); s < 400 || s > 499 {
				t.Fatalf("status %d", s)
			}
			if !strings.Contains(err.Error(), e.Part) {
				t.Fatalf("%q does not name %q", err, e.Part)
			}
			return
		}
		s := r.String()
		if strings.ContainsAny(s, " +-") {
			t.Fatalf("String() = %q has a sign or space", s)
		}
		seg := strings.Split(s, "/")
		if len(seg) != 4 {
			t.Fatalf("String() = %q has %d segments", s, len(seg))
		}
		back, err := ParseImage(r.Version, seg[0], seg[1], seg[2], seg[3])
		if err != nil {
			t.Fatalf("String() = %q does not parse: %v", s, err)
		}
		if back != r {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", s, back, r)
		}
		if back.String() != s {
			t.Fatalf("String() not stable: %q then %q", s, back.String())
		}
	})
}
