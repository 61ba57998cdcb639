package publish

import (
	"testing"

	"github.com/iiifd/iiifd/internal/source"
)

// TestIdentifiers checks that images are named by their path without the
// extension, except where two would share a name.
func TestIdentifiers(t *testing.T) {
	got := identifiers([]source.Entry{
		{Key: "maps/1850.tif"}, {Key: "a.jpg"}, {Key: "a.png"}, {Key: "b.jp2"}, {Key: "tiles/x", Pyramid: true},
	})
	want := map[string]string{"maps/1850.tif": "maps/1850", "a.jpg": "a.jpg", "a.png": "a.png", "b.jp2": "b", "tiles/x": "tiles/x"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

// TestServiceID checks ids relative to the site and under a base URL,
// with each segment of the identifier escaped.
func TestServiceID(t *testing.T) {
	for _, tc := range []struct{ base, id, want string }{
		{"", "mandelbrot", "iiif/3/mandelbrot"},
		{"", "maps/a b", "iiif/3/maps/a%20b"},
		{"https://example.org/site", "x?y", "https://example.org/site/iiif/3/x%3Fy"},
	} {
		if got := serviceID(tc.base, tc.id); got != tc.want {
			t.Errorf("serviceID(%q, %q) = %q, want %q", tc.base, tc.id, got, tc.want)
		}
	}
}
