package obs

import "github.com/prometheus/client_golang/prometheus"

// StoreCount is what one remote root (a bucket or an HTTP origin) has
// done so far.
type StoreCount struct {
	// Root names the root by its place in the configuration ("root",
	// "roots[0]", ...), never by its URL: a store's host, bucket or
	// path is not for whoever can read /metrics.
	Root        string
	Requests    int64 // range requests made
	Bytes       int64 // bytes they returned
	CacheHits   int64 // blocks served from the block cache instead
	BreakerOpen bool  // requests are refused for now
}

var (
	storeRequests = prometheus.NewDesc("iiifd_store_range_requests_total", "Range requests made to a remote root.", []string{"root"}, nil)
	storeBytes    = prometheus.NewDesc("iiifd_store_bytes_total", "Bytes fetched from a remote root by range requests.", []string{"root"}, nil)
	storeHits     = prometheus.NewDesc("iiifd_store_block_cache_hits_total", "Blocks of a remote root served from the block cache.", []string{"root"}, nil)
	storeOpen     = prometheus.NewDesc("iiifd_store_breaker_open", "1 while a remote root's circuit breaker refuses requests.", []string{"root"}, nil)
)

// storeCollector reads the remote roots' counters at each scrape.
type storeCollector struct{ counts func() []StoreCount }

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeRequests, storeBytes, storeHits, storeOpen} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.counts() {
		open := 0.0
		if s.BreakerOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(storeRequests, prometheus.CounterValue, float64(s.Requests), s.Root)
		ch <- prometheus.MustNewConstMetric(storeBytes, prometheus.CounterValue, float64(s.Bytes), s.Root)
		ch <- prometheus.MustNewConstMetric(storeHits, prometheus.CounterValue, float64(s.CacheHits), s.Root)
		ch <- prometheus.MustNewConstMetric(storeOpen, prometheus.GaugeValue, open, s.Root)
	}
}
