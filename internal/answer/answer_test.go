package answer

import (
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/iiif"
)

func TestPreconditions(t *testing.T) {
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	etag := `"abc"`
	for _, tc := range []struct {
		h    map[string]string
		want int
	}{
		{nil, 0},
		{map[string]string{"If-None-Match": `"abc"`}, StatusNotModified},
		{map[string]string{"If-None-Match": `W/"abc"`}, StatusNotModified},
		{map[string]string{"If-None-Match": `"x", *`}, StatusNotModified},
		{map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": mod.Format(TimeFormat)}, 0},
		{map[string]string{"If-Modified-Since": mod.Format(TimeFormat)}, StatusNotModified},
		{map[string]string{"If-Modified-Since": mod.Add(-time.Hour).Format(TimeFormat)}, 0},
		{map[string]string{"If-Match": `W/"abc"`}, StatusPreconditionFailed},
		{map[string]string{"If-Match": `"abc"`}, 0},
		{map[string]string{"If-Unmodified-Since": mod.Add(-time.Hour).Format(TimeFormat)}, StatusPreconditionFailed},
		{map[string]string{"If-Modified-Since": "Sunday, 02-Jan-26 03:04:05 GMT"}, StatusNotModified},
	} {
		if got := Preconditions(func(k string) string { return tc.h[k] }, etag, mod); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.h, got, tc.want)
		}
	}
}

func TestInfoContentType(t *testing.T) {
	for _, tc := range []struct {
		v      iiif.Version
		accept string
		want   string
	}{
		{iiif.V3, "", iiif.MediaTypeJSONLD3},
		{iiif.V3, "application/json", iiif.MediaTypeJSON},
		{iiif.V2, "", iiif.MediaTypeJSON},
		{iiif.V2, "application/ld+json", iiif.JSONLDMediaType(iiif.V2)},
		{iiif.V2, "application/ld+json;q=0", iiif.MediaTypeJSON},
	} {
		if got := InfoContentType(tc.v, tc.accept); got != tc.want {
			t.Errorf("v%d %q: %q, want %q", tc.v, tc.accept, got, tc.want)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	f.Add("Mon, 02 Jan 2006 15:04:05 GMT")
	f.Add("Monday, 02-Jan-06 15:04:05 GMT")
	f.Add("Mon Jan  2 15:04:05 2006")
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := ParseTime(s); err == nil {
			if _, err := ParseTime(tm.Format(TimeFormat)); err != nil {
				t.Fatalf("%q parsed, its IMF-fixdate %q did not", s, tm.Format(TimeFormat))
			}
		}
	})
}
