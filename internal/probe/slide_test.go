package probe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/slidetest"
)

func TestParseAperio(t *testing.T) {
	s := parseAperio("Aperio Image Library v11.2.1 \r\n46000x32914 [42673,5576 46000x32914] (240x240) JPEG/RGB Q=30|AppMag = 20|StripeWidth = 992|ScanScope ID = CPAPERIOCS|Filename = CMU-1|Date = 12/29/09|Time = 09:59:15|User = b414003d|MPP = 0.4990|Left = 25.691574|Top = 23.449873")
	if s.Vendor != "aperio" || s.MPPX != 0.499 || s.MPPY != 0.499 || s.Objective != 20 || s.ScanDate != "12/29/09 09:59:15" || s.Background != white {
		t.Errorf("%+v", s)
	}
	for _, bad := range []string{"Aperio", "Aperio|MPP = x|AppMag = -3|MPP = 1e9", "Aperio|MPP=NaN|AppMag=Inf"} {
		if s := parseAperio(bad); s.MPPX != 0 || s.Objective != 0 || s.ScanDate != "" {
			t.Errorf("%q: %+v", bad, s)
		}
	}
}

func TestSlideFromProperties(t *testing.T) {
	s := SlideFromProperties(map[string]string{
		"openslide.vendor": "hamamatsu", "openslide.mpp-x": "0.2266", "openslide.mpp-y": "0.2267",
		"openslide.objective-power": "40", "openslide.background-color": "FFEE00", "hamamatsu.Created": "2009/12/31",
	})
	if s.Vendor != "hamamatsu" || s.MPPX != 0.2266 || s.MPPY != 0.2267 || s.Objective != 40 || s.Background != [3]uint8{255, 238, 0} || s.ScanDate != "2009/12/31" {
		t.Errorf("%+v", s)
	}
	if s := SlideFromProperties(map[string]string{"openslide.mpp-x": "-1", "openslide.background-color": "zzzzzz"}); s.MPPX != 0 || s.Background != white {
		t.Errorf("%+v", s)
	}
}

// TestReadSlides probes the generated slides: the SVS is a TIFF with its
// Aperio facts, levels 1, 1/4, 1/16 and its associated pages; the
// generic TIFF no slide; the Philips TIFF a slide for OpenSlide.
func TestReadSlides(t *testing.T) {
	dir := slidetest.Dir(t)
	read := func(name string) (Info, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return Read(bytes.NewReader(b), int64(len(b)))
	}
	info, err := read("slide.svs")
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != TIFF || info.Slide == nil || info.Slide.Vendor != "aperio" || info.Slide.MPPX != 0.499 || info.Slide.Objective != 20 {
		t.Fatalf("svs: %s %+v", info.Format, info.Slide)
	}
	var sizes [][2]int
	for _, l := range info.Levels {
		sizes = append(sizes, [2]int{l.Width, l.Height})
	}
	if len(sizes) != 3 || sizes[1] != [2]int{600, 450} || sizes[2] != [2]int{150, 113} {
		t.Errorf("svs levels %v", sizes)
	}
	want := map[string][3]int{"thumbnail": {1, 768, 576}, "label": {4, 400, 300}, "macro": {5, 960, 720}}
	for _, a := range info.Slide.Associated {
		w := want[a.Name]
		if a.Level.Page != w[0] || a.Level.Width != w[1] || a.Level.Height != w[2] || a.Level.TIFF == nil {
			t.Errorf("%s: %+v, want page %d %dx%d", a.Name, a.Level, w[0], w[1], w[2])
		}
		delete(want, a.Name)
	}
	if len(want) > 0 {
		t.Errorf("missing associated images %v", want)
	}
	if info, err := read("generic.tif"); err != nil || info.Slide != nil || info.Format != TIFF {
		t.Errorf("generic: %v %+v", err, info.Slide)
	}
	_, err = read("philips.tiff")
	var fe *FormatError
	if !errors.Is(err, ErrSizeUnknown) || !errors.As(err, &fe) || fe.Format != Slide {
		t.Errorf("philips: %v", err)
	}
}

// FuzzParseAperio checks that any description parses without panicking
// into finite, positive numbers or none.
func FuzzParseAperio(f *testing.F) {
	f.Add("Aperio Image Library v11.2.1\n2400x1800 [0,0 2400x1800] (240x240) JPEG/RGB Q=80|AppMag = 20|Date = 12/29/09|Time = 09:59:15|MPP = 0.499")
	f.Add("Aperio|MPP = 1e400|AppMag = 0x10")
	f.Fuzz(func(t *testing.T, desc string) {
		s := parseAperio(desc)
		for _, x := range []float64{s.MPPX, s.MPPY, s.Objective} {
			if x < 0 || x >= 1e6 || x != x {
				t.Fatalf("%q: %+v", desc, s)
			}
		}
	})
}
