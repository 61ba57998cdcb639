package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote/remotetest"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// noiseTIFF writes a 2048² pyramidal TIFF of noise, in 256² JPEG tiles
// of about 40 KiB, and returns its path.
func noiseTIFF(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("vips"); err != nil {
		t.Skip("vips not installed")
	}
	dir := t.TempDir()
	noise, tif := filepath.Join(dir, "noise.v"), filepath.Join(dir, "big.tif")
	for _, args := range [][]string{
		{"gaussnoise", noise, "2048", "2048", "--sigma", "40"},
		{"cast", noise, tif + "[tile,pyramid,tile-width=256,tile-height=256,compression=jpeg,Q=90]", "uchar"},
	} {
		if out, err := exec.Command("vips", args...).CombinedOutput(); err != nil {
			t.Fatalf("vips %v: %v\n%s", args, err, out)
		}
	}
	return tif
}

// TestPrefetchSettings renders a region of nine tiles from an HTTP origin with one worker, under the settings of
// fetching ahead: the tiles are fetched before the render takes the
// worker (no request to the origin while it holds it) exactly when they
// fit --prefetch-per-render and --prefetch-memory (by default a quarter
// of --memory-limit).
func TestPrefetchSettings(t *testing.T) {
	tif := noiseTIFF(t)
	data, err := os.ReadFile(tif)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := probe.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var tiles config.ByteSize // of the region's 3×3 tiles
	for y := 1; y <= 3; y++ {
		for x := 1; x <= 3; x++ {
			br, err := hdr.Levels[0].TIFF.TileRange(bytes.NewReader(data), y*8+x)
			if err != nil {
				t.Fatal(err)
			}
			tiles += config.ByteSize(br.Length)
		}
	}
	var running atomic.Pointer[App]
	var inSlot atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := running.Load(); a != nil && a.admit.Stats().Running > 0 {
			inSlot.Add(1)
		}
		http.ServeFile(w, r, tif)
	}))
	defer origin.Close()
	const perRender = config.DefaultPrefetchPerRender
	for _, tc := range []struct {
		name              string
		perRender, memory config.ByteSize
		memoryLimit       config.ByteSize
		ahead             bool
	}{
		{"defaults", perRender, 0, 1 << 30, true},
		{"none per render", 0, 0, 1 << 30, false},
		{"per render below the tiles", tiles / 2, 0, 1 << 30, false},
		{"memory below the tiles", perRender, tiles / 2, 1 << 30, false},
		{"a quarter of the budget below the tiles", perRender, 0, 2 * tiles, false},
		{"memory over a quarter of the budget", perRender, tiles + 64<<10, 2*tiles + 64<<10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Root = origin.URL + "/"
			cfg.CacheMemory = 0
			cfg.Workers = 1
			cfg.MemoryLimit = tc.memoryLimit
			cfg.PrefetchPerRender, cfg.PrefetchMemory = tc.perRender, tc.memory
			a, hs := serve(t, cfg)
			running.Store(a)
			defer running.Store(nil)
			get := func(path string) {
				t.Helper()
				resp, err := http.Get(hs.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %.200s", path, resp.StatusCode, body)
				}
			}
			// A first render reads what libvips reads besides tiles.
			get("/iiif/3/big.tif/info.json")
			get("/iiif/3/big.tif/0,0,256,256/256,/0/default.png")
			inSlot.Store(0)
			get("/iiif/3/big.tif/300,300,600,600/200,/0/default.png")
			if ahead := inSlot.Load() == 0; ahead != tc.ahead {
				t.Errorf("fetched ahead: %v, want %v (%d requests while the render held the worker)", ahead, tc.ahead, inSlot.Load())
			}
			if st := a.admit.Stats(); st != (limit.Stats{}) {
				t.Errorf("admitter state %+v after the render, want none", st)
			}
		})
	}
}

// TestS3RendersWaitOutsideWorkers serves a pyramidal TIFF from versitygw
// behind a proxy adding 100 ms to every request, with one worker: eight
// distinct tiles rendered at once wait for the store together, because
// each render fetches its tile before it is admitted (if each held the
// worker through its round trips, the store would see one request at a
// time); and each costs one range request, of its tile's bytes. What is
// asserted is how many requests the store had in flight at once, not how
// long the renders took, so a busy machine cannot fail it.
func TestS3RendersWaitOutsideWorkers(t *testing.T) {
	data, err := os.ReadFile(noiseTIFF(t))
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := probe.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("slow")
	srv.Put(bucket, map[string][]byte{"big.tif": data})
	proxy := remotetest.Start(t, srv.Addr())
	s3test.Env(t, "http://"+proxy.Addr())
	cfg := config.Default()
	cfg.Root = "s3://" + bucket
	cfg.CacheMemory = 0
	cfg.Workers = 1
	a, hs := serve(t, cfg)
	client := &http.Client{Timeout: time.Minute}
	get := func(path string) error {
		resp, err := client.Get(hs.URL + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d %.200s", path, resp.StatusCode, body)
		}
		return nil
	}
	tile := func(x, y int) string {
		return fmt.Sprintf("/iiif/3/big.tif/%d,%d,256,256/256,/0/default.png", x*256, y*256)
	}
	// info.json, and a first render, which also reads the header and
	// IFD windows and the offset arrays libvips reads.
	if err := get("/iiif/3/big.tif/info.json"); err != nil {
		t.Fatal(err)
	}
	if err := get(tile(0, 0)); err != nil {
		t.Fatal(err)
	}

	const n, delay = 8, 100 * time.Millisecond
	proxy.SetDelay(delay)
	before := a.StoreStats()[cfg.Root]
	proxy.ResetMostWaiting()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- get(tile(i, 7-i%4))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := a.StoreStats()[cfg.Root]
	var want int64
	for i := range n {
		br, err := hdr.Levels[0].TIFF.TileRange(bytes.NewReader(data), (7-i%4)*8+i)
		if err != nil {
			t.Fatal(err)
		}
		want += br.Length
	}
	reqs, got := after.Requests-before.Requests, after.Bytes-before.Bytes
	most := proxy.MostWaiting()
	t.Logf("%d tiles rendered at once, one worker, %s a request: at most %d store requests in flight together; %d range requests, %d bytes (tiles: %d)", n, delay, most, reqs, got, want)
	if most < 2 {
		t.Errorf("the store saw at most %d request at a time: the renders waited for it one after the other, inside the one worker", most)
	}
	if slack := int64(n * 2 * ranged.BlockSize); reqs != n || got < want-slack || got > want+slack {
		t.Errorf("%d range requests of %d bytes, want %d of %d ± %d", reqs, got, n, want, slack)
	}
}
