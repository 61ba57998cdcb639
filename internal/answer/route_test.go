package answer

import (
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
)

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path   string
		want   Route
		status int
	}{
		{"3/a.jpg/info.json", Route{Kind: Info, Version: iiif.V3, ID: "a.jpg"}, 0},
		{"2/maps%2F1850%2Fsheet.tif/info.json", Route{Kind: Info, Version: iiif.V2, ID: "maps/1850/sheet.tif"}, 0},
		{"3/maps/1850/sheet/info.json", Route{Kind: Info, Version: iiif.V3, ID: "maps/1850/sheet"}, 0},
		{"3/a/full/max/0/default.jpg", Route{Kind: Image, Version: iiif.V3, ID: "a", Region: "full", Size: "max", Rotation: "0", QualityFormat: "default.jpg"}, 0},
		{"3/x/y/full/max/0/default.jpg", Route{Kind: Image, Version: iiif.V3, ID: "x/y", Region: "full", Size: "max", Rotation: "0", QualityFormat: "default.jpg"}, 0},
		{"3/a/", Route{Kind: Base, Version: iiif.V3, ID: "a"}, 0},
		{"3/a", Route{Kind: Base, Version: iiif.V3, ID: "a"}, 0},
		{"4/a/info.json", Route{}, 404},
		{"3/", Route{}, 404},
		{"3/%ZZ/info.json", Route{}, 400},
	} {
		got, err := ParseRoute(tc.path)
		if tc.status != 0 {
			if status(err) != tc.status {
				t.Errorf("%s: %v (status %d), want %d", tc.path, err, status(err), tc.status)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.path, got, err, tc.want)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"3/a/info.json", "2/a/full/max/0/default.jpg", "3/a", "3/%2e%2e/info.json", "3//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := ParseRoute(path)
		if err != nil {
			if s := status(err); s != 400 && s != 404 {
				t.Fatalf("%q: status %d", path, s)
			}
			return
		}
		if rt.ID == "" {
			t.Fatalf("%q: empty identifier", path)
		}
	})
}

func status(err error) int {
	s, _ := fault.Status(err)
	return s
}
