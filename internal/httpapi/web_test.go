package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/service"
)

// noImages answers nothing: the routes below never reach the pipeline.
type noImages struct{}

func (noImages) Info(context.Context, iiif.Version, string, string) (*service.Info, error) {
	return nil, context.Canceled
}
func (noImages) Image(context.Context, string, iiif.Request) (*service.Job, error) {
	return nil, context.Canceled
}
func (noImages) Purge(context.Context, string) error { return nil }

func (noImages) Peek(service.Held) ([]byte, bool) { return nil, false }

// TestWebMount checks which paths reach Options.Web, and the base URL it
// is given.
func TestWebMount(t *testing.T) {
	web := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Web", "yes")
		io.WriteString(w, httpapi.BaseURL(r))
	})
	h := httpapi.New(noImages{}, httpapi.Options{Web: web, TrustForwarded: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		path    string
		fwd     map[string]string
		web     bool
		wantURL string
	}{
		{"/", nil, true, "http://example.org"},
		{"/view/a%2Fb.tif", nil, true, "http://example.org"},
		{"/iiif/presentation/3/a/manifest", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "img.example.net", "X-Forwarded-Prefix": "/p"}, true, "https://img.example.net/p"},
		{"/iiif/3/a/info.json", nil, false, ""},
		{"/healthz", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://example.org"+tc.path, nil)
			for k, v := range tc.fwd {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("X-Web") == "yes"; got != tc.web {
				t.Fatalf("served by web: %v, want %v (%d)", got, tc.web, rec.Code)
			}
			if tc.web && rec.Body.String() != tc.wantURL {
				t.Errorf("base %q, want %q", rec.Body.String(), tc.wantURL)
			}
		})
	}
}
