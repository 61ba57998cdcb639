// Package obs is what operators see of the server: Prometheus metrics
// (every name starts iiifd_), fed by the HTTP edge and read from the
// cache, the admission controller and the pixel engine when scraped.
package obs

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/limit"
)

// Sources are the components whose state is read at each scrape; any may
// be nil.
type Sources struct {
	Cache *cache.Cache
	Admit *limit.Admitter
	// Engine, when set, reports the pixel engine's own accounting
	// (libvips' tracked memory and files).
	Engine func() EngineStats
	// Stores reports the remote roots' counters; nil when there are none.
	Stores func() []StoreCount
}

// EngineStats is what the pixel engine reports of its resource use.
type EngineStats struct {
	Memory, MemoryHighwater int64 // bytes of pixel buffers held now, and at most
	OpenFiles               int
}

// Metrics holds the server's metrics in a registry of its own (not the
// global one, so tests and several servers in one process do not clash).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	images   *prometheus.CounterVec
	byAnswer sync.Map // observerKey → *requestObservers
}

// New returns the metrics of one server.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "iiifd_http_requests_total", Help: "HTTP requests answered, by route and status code.",
	}, []string{"route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "iiifd_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "iiifd_http_response_bytes_total", Help: "Body bytes sent, by route.",
	}, []string{"route"})
	m.images = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "iiifd_responses_by_cache_total", Help: "Image and info.json responses by where they came from (X-Cache: hit tier or miss).",
	}, []string{"route", "cache"})
	m.reg.MustRegister(m.requests, m.duration, m.bytes, m.images,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Cache != nil {
		m.reg.MustRegister(cacheCollector{src.Cache})
	}
	if src.Stores != nil {
		m.reg.MustRegister(storeCollector{src.Stores})
	}
	if a := src.Admit; a != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_running", Help: "Image operations running."},
				func() float64 { return float64(a.Stats().Running) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_waiting", Help: "Image operations waiting for admission."},
				func() float64 { return float64(a.Stats().Waiting) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_memory_bytes", Help: "Estimated memory of running image operations."},
				func() float64 { return float64(a.Stats().Memory) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_reserved", Help: "Image operations with a queue place, not running yet (fetching their input or waiting)."},
				func() float64 { return float64(a.Stats().Reserved) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_held_bytes", Help: "Input bytes fetched ahead by image operations not running yet."},
				func() float64 { return float64(a.Stats().Held) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_work_output_bytes", Help: "Finished image bytes held in memory for clients still receiving them."},
				func() float64 { return float64(a.Stats().Output) }),
		)
	}
	if st := src.Engine; st != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_vips_memory_bytes", Help: "Pixel memory libvips holds now."},
				func() float64 { return float64(st().Memory) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_vips_memory_highwater_bytes", Help: "The most pixel memory libvips has held."},
				func() float64 { return float64(st().MemoryHighwater) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiifd_vips_open_files", Help: "Files libvips holds open."},
				func() float64 { return float64(st().OpenFiles) }),
		)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe records one answered request; it has the signature of
// httpapi.Options.Observe.
func (m *Metrics) Observe(route string, status int, bytes int64, d time.Duration, xcache string) {
	o := m.observers(route, status, xcache)
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
	o.bytes.Add(float64(bytes))
	if o.images != nil {
		o.images.Inc()
	}
}

// requestObservers are the series one kind of answer adds to, looked up
// once: a vector's lookup hashes its label values on every call, which
// is a real share of the cost of a cache hit.
type requestObservers struct {
	requests, bytes prometheus.Counter
	duration        prometheus.Observer
	images          prometheus.Counter // nil when the answer has no X-Cache
}

type observerKey struct {
	route  string
	status int
	xcache string
}

// observers returns the series of an answer. The keys are few: a fixed
// set of routes, the status codes the server sends, and the X-Cache
// values (a miss or a hit in one of the tiers).
func (m *Metrics) observers(route string, status int, xcache string) *requestObservers {
	k := observerKey{route, status, xcache}
	if o, ok := m.byAnswer.Load(k); ok {
		return o.(*requestObservers)
	}
	o := &requestObservers{
		requests: m.requests.WithLabelValues(route, strconv.Itoa(status)),
		bytes:    m.bytes.WithLabelValues(route),
		duration: m.duration.WithLabelValues(route),
	}
	if xcache != "" {
		res := "miss"
		if tier, ok := strings.CutPrefix(xcache, "HIT "); ok {
			res = "hit_" + tier
		}
		o.images = m.images.WithLabelValues(route, res)
	}
	v, _ := m.byAnswer.LoadOrStore(k, o)
	return v.(*requestObservers)
}

// Route names a path's route with a small fixed set of values, so that
// identifiers never become label values.
func Route(path string) string {
	switch {
	case strings.HasPrefix(path, "/iiif/"):
		if strings.HasSuffix(path, "/info.json") {
			return "info"
		}
		if strings.Count(path, "/") >= 6 {
			return "image"
		}
		return "redirect"
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return strings.TrimPrefix(path, "/")
	case strings.HasPrefix(path, "/admin/"):
		return "admin"
	}
	return "other"
}

// cacheCollector reads the cache's counters at each scrape.
type cacheCollector struct{ c *cache.Cache }

var (
	cacheHits      = prometheus.NewDesc("iiifd_cache_hits_total", "Cache lookups that found an entry, by tier.", []string{"tier"}, nil)
	cacheMisses    = prometheus.NewDesc("iiifd_cache_misses_total", "Cache lookups that found none, by tier.", []string{"tier"}, nil)
	cachePuts      = prometheus.NewDesc("iiifd_cache_puts_total", "Entries stored, by tier.", []string{"tier"}, nil)
	cacheEvictions = prometheus.NewDesc("iiifd_cache_evictions_total", "Entries evicted to respect the size bound, by tier.", []string{"tier"}, nil)
	cacheErrors    = prometheus.NewDesc("iiifd_cache_errors_total", "Tier faults served as misses, by tier.", []string{"tier"}, nil)
	cacheBytes     = prometheus.NewDesc("iiifd_cache_bytes", "Bytes held, by tier (where the tier knows).", []string{"tier"}, nil)
	cacheEntries   = prometheus.NewDesc("iiifd_cache_entries", "Entries held, by tier (where the tier knows).", []string{"tier"}, nil)
	cacheFills     = prometheus.NewDesc("iiifd_cache_fills_total", "Lookups that computed the entry.", nil, nil)
	cacheCoalesced = prometheus.NewDesc("iiifd_cache_coalesced_total", "Lookups answered by a concurrent identical request's computation.", nil, nil)
	cacheRemote    = prometheus.NewDesc("iiifd_cache_remote_total", "Lookups that waited for another replica's computation of the same entry and were answered by it.", nil, nil)
)

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cachePuts, cacheEvictions, cacheErrors, cacheBytes, cacheEntries, cacheFills, cacheCoalesced, cacheRemote} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheFills, prometheus.CounterValue, float64(st.Fills))
	ch <- prometheus.MustNewConstMetric(cacheCoalesced, prometheus.CounterValue, float64(st.Coalesced))
	ch <- prometheus.MustNewConstMetric(cacheRemote, prometheus.CounterValue, float64(st.Remote))
	for _, t := range st.Tiers {
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(t.Hits), t.Tier)
		ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(t.Misses), t.Tier)
		ch <- prometheus.MustNewConstMetric(cachePuts, prometheus.CounterValue, float64(t.Puts), t.Tier)
		ch <- prometheus.MustNewConstMetric(cacheEvictions, prometheus.CounterValue, float64(t.Evictions), t.Tier)
		ch <- prometheus.MustNewConstMetric(cacheErrors, prometheus.CounterValue, float64(t.Errors), t.Tier)
		ch <- prometheus.MustNewConstMetric(cacheBytes, prometheus.GaugeValue, float64(t.Bytes), t.Tier)
		ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(t.Entries), t.Tier)
	}
}
