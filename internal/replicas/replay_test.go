package replicas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/samples"
)

// A request of the generated log.
type logEntry struct {
	day  int
	path string
	id   string
}

// dims are an image's width and height.
type dims struct{ w, h int }

// genLog makes a request log that looks like a week of viewer traffic
// (plus a day 0 before it, the traffic mirrored to warm the CDN):
// sessions pick an image by Zipf popularity, fetch its info.json, the
// tiles of the overview level, then zoom in a few levels around a point,
// fetching the tiles of a 1024×768 viewport at each level, as
// OpenSeadragon does with 512-pixel tiles.
func genLog(seed uint64, ids []string, size map[string]dims, sessionsPerDay int) []logEntry {
	rng := rand.New(rand.NewPCG(seed, 42))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(ids)-1))
	const tile = 512
	var out []logEntry
	for day := 0; day <= 7; day++ {
		for range sessionsPerDay {
			id := ids[zipf.Uint64()]
			d := size[id]
			add := func(p string) { out = append(out, logEntry{day, p, id}) }
			add("/iiif/3/" + id + "/info.json")
			// The overview: the level at which the image fits 1024 px.
			f := 1
			for max(d.w, d.h)/f > 1024 {
				f *= 2
			}
			tiles := func(f, x0, y0, x1, y1 int) {
				span := tile * f
				for y := (y0 / span) * span; y < min(y1, d.h); y += span {
					for x := (x0 / span) * span; x < min(x1, d.w); x += span {
						w, h := min(span, d.w-x), min(span, d.h-y)
						add(fmt.Sprintf("/iiif/3/%s/%d,%d,%d,%d/%d,/0/default.jpg", id, x, y, w, h, (w+f-1)/f))
					}
				}
			}
			tiles(f, 0, 0, d.w, d.h)
			cx, cy := rng.IntN(d.w), rng.IntN(d.h)
			for steps := rng.IntN(4); steps > 0 && f > 1; steps-- {
				f /= 2
				cx = min(max(cx+rng.IntN(513)-256, 0), d.w-1)
				cy = min(max(cy+rng.IntN(513)-256, 0), d.h-1)
				vw, vh := 1024*f, 768*f
				tiles(f, max(cx-vw/2, 0), max(cy-vh/2, 0), cx+vw/2, cy+vh/2)
			}
		}
	}
	return out
}

// TestCDNReplay is the CDN launch plan on loopback: Varnish with xkey in
// front of two replicas, warmed with `iiifd warm --urls` from a mirrored
// day of traffic, then a generated week of requests replayed. It reports
// the hit ratio per day and the latency of hits and misses, and checks
// that a purge by tag empties exactly one image's entries. It is long:
// scripts/bench-cdn runs it (IIIFD_BENCH_CDN=1).
func TestCDNReplay(t *testing.T) {
	if os.Getenv("IIIFD_BENCH_CDN") != "1" {
		t.Skip("the CDN replay is a benchmark: scripts/bench-cdn runs it")
	}
	sessions := 120
	if s, err := strconv.Atoi(os.Getenv("IIIFD_BENCH_SESSIONS")); err == nil && s > 0 {
		sessions = s
	}
	vport := freePort(t)
	c := newCluster(t, "IIIFD_PURGE_URL=http://127.0.0.1:"+strconv.Itoa(vport)+"/", "IIIFD_CACHE_MEMORY=256MiB")
	// 40 images: copies of the samples under their own identifiers.
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	srcs := []string{"mandelbrot.tif", "julia.jpg", "zoneplate.jp2"}
	files := map[string][]byte{}
	var ids []string
	for i := range 40 {
		name := srcs[i%len(srcs)]
		b, _ := os.ReadFile(filepath.Join(dir, name))
		id := fmt.Sprintf("img%02d", i)
		files[id+filepath.Ext(name)] = b
		ids = append(ids, id)
	}
	c.store.Put(c.bucket, files)
	r1, r2 := c.replica("r1"), c.replica("r2")
	v := startVarnish(t, vport, r1, r2)
	size := map[string]dims{}
	for _, id := range ids {
		resp, err := http.Get(r1.url() + "/iiif/3/" + id + "/info.json")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Width, Height int }
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		size[id] = dims{info.Width, info.Height}
	}
	log := genLog(1, ids, size, sessions)

	// Warm: day 0 as a log file, replayed by iiifd warm through Varnish.
	var day0 bytes.Buffer
	for _, e := range log {
		if e.day == 0 {
			fmt.Fprintf(&day0, "127.0.0.1 - - [day 0] \"GET %s HTTP/1.1\" 200 -\n", e.path)
		}
	}
	warmFile := filepath.Join(t.TempDir(), "day0.log")
	os.WriteFile(warmFile, day0.Bytes(), 0o644)
	out, err := exec.Command(c.bin, "warm", "--server", v.url(), "--urls", warmFile, "--concurrency", "4").CombinedOutput()
	if err != nil {
		t.Fatalf("iiifd warm: %v\n%s", err, out)
	}

	// Replay days 1-7 with 8 clients in log order.
	type result struct {
		day int
		hit bool
		d   time.Duration
		ok  bool
	}
	var entries []logEntry
	for _, e := range log {
		if e.day > 0 {
			entries = append(entries, e)
		}
	}
	results := make([]result, len(entries))
	next := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 8 {
		wg.Go(func() {
			for i := range next {
				start := time.Now()
				resp, err := client.Get(v.url() + entries[i].path)
				if err != nil {
					results[i] = result{day: entries[i].day}
					continue
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body)
				resp.Body.Close()
				results[i] = result{entries[i].day, resp.Header.Get("X-Varnish-Cache") == "HIT", time.Since(start), resp.StatusCode == 200}
			}
		})
	}
	for i := range entries {
		next <- i
	}
	close(next)
	wg.Wait()

	pct := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[int(math.Ceil(p*float64(len(ds))))-1]
	}
	var report strings.Builder
	fmt.Fprintf(&report, "CDN replay: %d images, Zipf s=1.1, %d sessions a day; warmed with day 0 (%d URLs); %d requests replayed\n",
		len(ids), sessions, strings.Count(day0.String(), "\n"), len(entries))
	fmt.Fprintf(&report, "| day | requests | hit ratio | hit p50 | hit p99 | miss p50 | miss p99 |\n|---|---|---|---|---|---|---|\n")
	var allHits, allMisses []time.Duration
	failed := 0
	for day := 1; day <= 7; day++ {
		var hits, misses []time.Duration
		for _, r := range results {
			if r.day != day {
				continue
			}
			if !r.ok {
				failed++
				continue
			}
			if r.hit {
				hits = append(hits, r.d)
			} else {
				misses = append(misses, r.d)
			}
		}
		allHits, allMisses = append(allHits, hits...), append(allMisses, misses...)
		n := len(hits) + len(misses)
		fmt.Fprintf(&report, "| %d | %d | %.1f %% | %v | %v | %v | %v |\n", day, n, 100*float64(len(hits))/float64(max(n, 1)),
			pct(hits, .5).Round(10*time.Microsecond), pct(hits, .99).Round(10*time.Microsecond),
			pct(misses, .5).Round(100*time.Microsecond), pct(misses, .99).Round(100*time.Microsecond))
	}
	n := len(allHits) + len(allMisses)
	fmt.Fprintf(&report, "| week | %d | %.1f %% | %v | %v | %v | %v |\n", n, 100*float64(len(allHits))/float64(max(n, 1)),
		pct(allHits, .5).Round(10*time.Microsecond), pct(allHits, .99).Round(10*time.Microsecond),
		pct(allMisses, .5).Round(100*time.Microsecond), pct(allMisses, .99).Round(100*time.Microsecond))
	if failed > 0 {
		t.Errorf("%d requests failed", failed)
	}

	// Purge the most popular image by tag: exactly its URLs leave Varnish.
	distinct := map[string]string{}
	for _, e := range log {
		distinct[e.path] = e.id
	}
	top := ids[0]
	req, _ := http.NewRequest(http.MethodDelete, r1.url()+"/admin/cache/"+top, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("purge: %v %v", err, resp)
	}
	var topMiss, topHit, otherMiss, otherHit int
	for p, id := range distinct {
		_, x, _ := getVia(t, v.url()+p)
		switch {
		case id == top && x == "MISS":
			topMiss++
		case id == top:
			topHit++
		case x == "MISS":
			otherMiss++
		default:
			otherHit++
		}
	}
	fmt.Fprintf(&report, "purge of %s by tag: %d of its %d URLs left Varnish; %d of the %d URLs of the other images did\n",
		top, topMiss, topMiss+topHit, otherMiss, otherMiss+otherHit)
	if topHit > 0 || otherMiss > 0 {
		t.Errorf("purge by tag was not exact: %d of %s's URLs still cached, %d other URLs gone", topHit, top, otherMiss)
	}
	t.Log("\n" + report.String())
	if p := os.Getenv("IIIFD_BENCH_OUT"); p != "" {
		os.WriteFile(p, []byte(report.String()), 0o644)
	}
}
