package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
)

// TestMetricsPrivate: /metrics names remote roots by their place in the
// configuration, never by URL (issue 14 item 7: the URLs of private
// stores were on the public port, readable cross-origin); and with
// --admin-addr set, /metrics is served there only.
func TestMetricsPrivate(t *testing.T) {
	origin := httptest.NewServer(http.NotFoundHandler())
	defer origin.Close()
	host := strings.TrimPrefix(origin.URL, "http://")
	cfg := config.Default()
	cfg.Root = origin.URL + "/images/"
	cfg.Stores.Roots = []config.RootRule{{Match: "special/**", Root: origin.URL + "/other/"}}

	scrape := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, hs := serve(t, cfg)
	code, body := scrape(hs.URL + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if strings.Contains(body, host) || strings.Contains(body, "/images/") {
		t.Errorf("/metrics names a store's URL:\n%s", grepLines(body, "iiifd_store_"))
	}
	for _, want := range []string{`iiifd_store_range_requests_total{root="root"}`, `iiifd_store_range_requests_total{root="roots[0]"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "iiifd_store_"))
		}
	}

	// With an admin address, the public port has no /metrics.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := free.Addr().String()
	free.Close()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = adminAddr
	cfg.DrainDelay = 0
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(addr net.Addr) { addrc <- addr }) }()
	public := "http://" + (<-addrc).String()
	if code, _ := scrape(public + "/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics with --admin-addr: %d, want 404", code)
	}
	if code, body := scrape("http://" + adminAddr + "/metrics"); code != 200 || !strings.Contains(body, `root="roots[0]"`) {
		t.Errorf("admin /metrics: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
