package plan

import (
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
)

func TestParseFormatLimits(t *testing.T) {
	m, err := ParseFormatLimits("JPG=4096x4096, png=3584x3584x12845056")
	if err != nil {
		t.Fatal(err)
	}
	if got := m[iiif.FormatJPG]; got != (FormatLimits{MaxWidth: 4096, MaxHeight: 4096}) {
		t.Errorf("jpg: %+v", got)
	}
	if got := m[iiif.FormatPNG]; got != (FormatLimits{MaxWidth: 3584, MaxHeight: 3584, MaxArea: 12845056}) {
		t.Errorf("png: %+v", got)
	}
	for _, bad := range []string{"jpg", "jpg=1", "jpg=1x2x3x4", "jpg=-1x2", "=1x1", "gif=ax1"} {
		if _, err := ParseFormatLimits(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseFormatLimits(f *testing.F) {
	for _, s := range []string{"gif=2000x2000", "png=0x0x5, webp=1x1", "", "=", "a=bxc", "x=1x2x3x4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseFormatLimits(s)
		if err != nil {
			return
		}
		for _, l := range m {
			if l.MaxWidth < 0 || l.MaxHeight < 0 || l.MaxArea < 0 {
				t.Fatalf("negative limit from %q: %+v", s, l)
			}
		}
	})
}
