package metrics

import "testing"

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/iiif/3/a/info.json":                  "info",
		"/iiif/3/a%2Fb/full/max/0/default.jpg": "image",
		"/iiif/2/a/b/c/full/max/0/default.jpg": "image",
		"/iiif/3/a":                            "redirect",
		"/healthz":                             "healthz",
		"/metrics":                             "metrics",
		"/admin/cache/x":                       "admin",
		"/favicon.ico":                         "other",
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
}
