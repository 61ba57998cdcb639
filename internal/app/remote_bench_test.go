package app

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/remote/remotetest"
	s3src "github.com/iiifd/iiifd/internal/source/s3"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// TestRemoteFigures measures what docs/BENCHMARKS.md reports for remote
// sources: bytes fetched from S3 for an info.json and for a tile of a
// large pyramidal TIFF, and stored-tile throughput from S3 (versitygw on
// loopback, with and without 20 ms added per request) against local disk.
// It runs only when IIIFD_BENCH_TIFF names a pyramidal TIFF with JPEG
// tiles of 256 px:
//
//	IIIFD_BENCH_TIFF=/tmp/big.tif go test -run TestRemoteFigures -v ./internal/app/
func TestRemoteFigures(t *testing.T) {
	file := os.Getenv("IIIFD_BENCH_TIFF")
	if file == "" {
		t.Skip("IIIFD_BENCH_TIFF not set")
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("bench")
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	key := "big.tif"
	if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f, ContentLength: aws.Int64(st.Size())}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	proxy := remotetest.Start(t, srv.Addr())
	s3test.Env(t, "http://"+proxy.Addr())

	start := func(root string) (*App, string) {
		cfg := config.Default()
		cfg.Root = root
		cfg.CacheMemory = 0
		cfg.LogLevel = "error"
		a, hs := serve(t, cfg)
		return a, hs.URL
	}
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	const tiles = 79 // 20000 / 256, rounded down: interior tiles only
	// Tiles are drawn from one permutation of the interior tiles, so no
	// S3 measurement requests a tile another one fetched: every tile's
	// bytes come from the store, not from the block cache.
	perm := rand.New(rand.NewPCG(1, 9)).Perm((tiles - 1) * (tiles - 1))
	// Each server draws from its own counter: no S3 or HTTP measurement
	// requests a tile an earlier one of the same server (and its block
	// cache) fetched.
	var mu sync.Mutex
	drawn := map[string]*atomic.Int64{}
	format := "jpg" // aligned JPEG tiles pass through; png renders them
	tileURL := func(base string, _ int) string {
		mu.Lock()
		d := drawn[base]
		if d == nil {
			d = new(atomic.Int64)
			drawn[base] = d
		}
		mu.Unlock()
		i := perm[int(d.Add(1)-1)%len(perm)]
		x, y := i%(tiles-1)*256, i/(tiles-1)*256
		return fmt.Sprintf("%s/iiif/3/big.tif/%d,%d,256,256/256,256/0/default.%s", base, x, y, format)
	}
	throughput := func(base string, n, conc int) float64 {
		var wg sync.WaitGroup
		next := make(chan int)
		began := time.Now()
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if code := get(tileURL(base, i)); code != 200 {
						t.Errorf("tile %d: %d", i, code)
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return float64(n) / time.Since(began).Seconds()
	}

	// Bytes per info.json and per tile, cold.
	a, base := start("s3://" + bucket)
	s0 := a.StoreStats()["s3://"+bucket]
	if code := get(base + "/iiif/3/big.tif/info.json"); code != 200 {
		t.Fatalf("info.json: %d", code)
	}
	s1 := a.StoreStats()["s3://"+bucket]
	if code := get(tileURL(base, 1)); code != 200 {
		t.Fatalf("tile: %d", code)
	}
	s2 := a.StoreStats()["s3://"+bucket]
	for i := 2; i < 12; i++ {
		get(tileURL(base, i))
	}
	s3s := a.StoreStats()["s3://"+bucket]
	t.Logf("object %d bytes; info.json: %d range requests, %d bytes; first tile: %d requests, %d bytes; next 10 tiles: %d requests, %d bytes",
		st.Size(), s1.Requests-s0.Requests, s1.Bytes-s0.Bytes, s2.Requests-s1.Requests, s2.Bytes-s1.Bytes, s3s.Requests-s2.Requests, s3s.Bytes-s2.Bytes)

	// Throughput: the same file on local disk, in S3, and on an HTTP
	// origin that costs little CPU per request (nginx), each remote store
	// also behind a proxy adding 20 ms to every request.
	dir := t.TempDir()
	if err := os.Link(file, filepath.Join(dir, "big.tif")); err != nil {
		t.Fatal(err) // same file system needed: the root refuses links leading out
	}
	_, local := start(dir)
	origin := startNginx(t, filepath.Dir(file))
	hproxy := remotetest.Start(t, origin)
	// The machine is shared: each figure is the median of three rounds,
	// the sources measured one after another in every round.
	_, s3base := start("s3://" + bucket)
	_, slow := start("s3://" + bucket)
	_, hbase := start("http://" + origin + "/")
	_, hslow := start("http://" + hproxy.Addr() + "/")
	hproxy.SetDelay(20 * time.Millisecond)
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	const n = 250
	for _, run := range []struct {
		format string
		conc   int
	}{{"jpg", 1}, {"jpg", 8}, {"jpg", 32}, {"png", 1}, {"png", 8}, {"png", 32}} {
		if run.format == "png" && os.Getenv("IIIFD_BENCH_RENDER") == "" {
			continue // needs objects without a file decoded (issue-4-pixels)
		}
		format = run.format
		c := run.conc
		var fs, s3r, s3slow, hr, hsl []float64
		for round := 0; round < 3; round++ {
			fs = append(fs, throughput(local, n, c))
			s3r = append(s3r, throughput(s3base, n, c))
			proxy.SetDelay(20 * time.Millisecond)
			s3slow = append(s3slow, throughput(slow, n, c))
			proxy.SetDelay(0)
			hr = append(hr, throughput(hbase, n, c))
			hsl = append(hsl, throughput(hslow, n, c))
		}
		d, r, sl, h, hs := median(fs), median(s3r), median(s3slow), median(hr), median(hsl)
		t.Logf("%s, concurrency %d: disk %.0f tiles/s; S3 %.0f (%.2f×); S3 +20 ms %.0f (%.2f×); HTTP %.0f (%.2f×); HTTP +20 ms %.0f (%.2f×)",
			format, c, d, r, r/d, sl, sl/d, h, h/d, hs, hs/d)
	}
}

// startNginx serves dir on a free loopback port with Debian's nginx (an
// origin that honours Range and costs little CPU per request) and returns
// its HOST:PORT; the test is skipped without nginx.
func startNginx(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tmp := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 1000000;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, tmp, addr, dir)
	path := filepath.Join(tmp, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-e", filepath.Join(tmp, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if i == 50 {
			log, _ := os.ReadFile(filepath.Join(tmp, "error.log"))
			t.Fatalf("nginx did not listen on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRemoteTileDirFigures measures stored-tile throughput of a IIIF
// level-0 tile directory (256 px tiles) from S3 against local disk. It
// runs only when IIIFD_BENCH_TILES names such a directory:
//
//	IIIFD_BENCH_TILES=/tmp/pyr go test -run TestRemoteTileDirFigures -v ./internal/app/
func TestRemoteTileDirFigures(t *testing.T) {
	dir := os.Getenv("IIIFD_BENCH_TILES")
	if dir == "" {
		t.Skip("IIIFD_BENCH_TILES not set")
	}
	info, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pyramid.Parse(info)
	if err != nil {
		t.Fatal(err)
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("tiles")
	up, err := s3src.New(t.Context(), s3src.Config{
		Bucket: bucket, Endpoint: srv.Endpoint(), Region: s3test.Region, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
		Policy: remote.DefaultPolicy(), Store: ranged.NewStore(ranged.Config{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := up.PutTree(t.Context(), "pyr", dir, 16, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("uploaded in %s", time.Since(began).Round(time.Millisecond))
	proxy := remotetest.Start(t, srv.Addr())
	s3test.Env(t, "http://"+proxy.Addr())
	start := func(root string) string {
		cfg := config.Default()
		cfg.Root = root
		cfg.CacheMemory = 0
		_, hs := serve(t, cfg)
		return hs.URL
	}
	w, h := p.Level(1)
	cols, rows := w/p.TileWidth, h/p.TileHeight // interior tiles
	perm := rand.New(rand.NewPCG(2, 9)).Perm(cols * rows)
	var drawn atomic.Int64
	throughput := func(base, id string, n, conc int) float64 {
		var wg sync.WaitGroup
		next := make(chan struct{})
		began := time.Now()
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					i := perm[int(drawn.Add(1)-1)%len(perm)]
					x, y := i%cols*p.TileWidth, i/cols*p.TileHeight
					url := fmt.Sprintf("%s/iiif/3/%s/%d,%d,%d,%d/%d,%d/0/default.jpg", base, id, x, y, p.TileWidth, p.TileHeight, p.TileWidth, p.TileHeight)
					resp, err := http.Get(url)
					if err != nil {
						t.Error(err)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("%s: %d", url, resp.StatusCode)
					}
				}
			}()
		}
		for range n {
			next <- struct{}{}
		}
		close(next)
		wg.Wait()
		return float64(n) / time.Since(began).Seconds()
	}
	local, s3base, slow := start(filepath.Dir(dir)), start("s3://"+bucket), start("s3://"+bucket)
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	for _, c := range []int{1, 8, 32} {
		var fs, s3r, s3slow []float64
		for round := 0; round < 3; round++ {
			fs = append(fs, throughput(local, filepath.Base(dir), 250, c))
			s3r = append(s3r, throughput(s3base, "pyr", 250, c))
			proxy.SetDelay(20 * time.Millisecond)
			s3slow = append(s3slow, throughput(slow, "pyr", 250, c))
			proxy.SetDelay(0)
		}
		d, r, sl := median(fs), median(s3r), median(s3slow)
		t.Logf("tile directory, concurrency %d: disk %.0f tiles/s; S3 %.0f tiles/s (%.2f×); S3 +20 ms/request %.0f tiles/s (%.2f×)", c, d, r, r/d, sl, sl/d)
	}
}

// TestRemoteJP2Figures measures what docs/BENCHMARKS.md reports for JPEG
// 2000 in S3: range requests and bytes fetched, each request on a cold
// server (empty block cache), for an info.json, single 512² tiles at full
// resolution (first, middle, last in codestream order) and a thumbnail.
// It runs only when IIIFD_BENCH_JP2 names tiled JP2 files with 512²
// tiles (comma-separated), all IIIFD_BENCH_JP2_SIZE (default 8192) pixels
// square:
//
//	IIIFD_BENCH_JP2=/tmp/a.jp2,/tmp/b.jp2 go test -run TestRemoteJP2Figures -v ./internal/app/
func TestRemoteJP2Figures(t *testing.T) {
	list := os.Getenv("IIIFD_BENCH_JP2")
	if list == "" {
		t.Skip("IIIFD_BENCH_JP2 not set")
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("jp2")
	s3test.Env(t, srv.Endpoint())
	for _, file := range strings.Split(list, ",") {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		key := filepath.Base(file)
		if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f, ContentLength: aws.Int64(st.Size())}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("%s: %d bytes", key, st.Size())
		w := 8192
		if v, err := strconv.Atoi(os.Getenv("IIIFD_BENCH_JP2_SIZE")); err == nil {
			w = v
		}
		tile := func(x, y int) string { return fmt.Sprintf("%d,%d,512,512/512,/0/default.jpg", x, y) }
		reqs := []string{
			"info.json",
			tile(0, 0),
			tile(w/2, w/2),
			tile(w-512, w-512),
			"full/!512,512/0/default.jpg",
			tile(w/4, w/4),
		}
		// Cold: a new server (empty block cache and source cache) for
		// each request. Warm: one server for the whole sequence.
		for _, warm := range []bool{false, true} {
			var a *App
			var base string
			open := func() {
				cfg := config.Default()
				cfg.Root = "s3://" + bucket
				cfg.CacheMemory = 0
				cfg.LogLevel = "error"
				cfg.Stores.SourceCacheDir = t.TempDir()
				var hs *httptest.Server
				a, hs = serve(t, cfg)
				base = hs.URL
			}
			if warm {
				open()
			}
			for _, req := range reqs {
				if !warm {
					open()
				}
				root := "s3://" + bucket
				before := a.StoreStats()[root]
				start := time.Now()
				resp, err := http.Get(base + "/iiif/3/" + key + "/" + req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(start)
				s := a.StoreStats()[root]
				n, b := s.Requests-before.Requests, s.Bytes-before.Bytes
				t.Logf("| %s | %s | warm=%v | %d | %d | %d | %.1f %% | %s |", key, req, warm, resp.StatusCode, n, b,
					100*float64(b)/float64(st.Size()), d.Round(time.Millisecond))
			}
		}
	}
}
