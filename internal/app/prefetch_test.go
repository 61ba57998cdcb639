package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote/remotetest"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// TestS3RendersWaitOutsideWorkers serves a pyramidal TIFF from versitygw
// behind a proxy adding 100 ms to every request, with one worker: eight
// distinct tiles rendered at once finish in about the time of one or two
// round trips, because each render fetches its tile before it is
// admitted (before the change, each held the worker through its round
// trips: over 800 ms); and each costs one range request, of its tile's
// bytes.
func TestS3RendersWaitOutsideWorkers(t *testing.T) {
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
	data, err := os.ReadFile(tif)
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
	began := time.Now()
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
	took := time.Since(began)
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
	t.Logf("%d tiles rendered at once, one worker, %s a request: %s; %d range requests, %d bytes (tiles: %d)", n, delay, took, reqs, got, want)
	if took > n*delay/2 {
		t.Errorf("%d renders took %s, want well under %s", n, took, n*delay)
	}
	if slack := int64(n * 2 * ranged.BlockSize); reqs != n || got < want-slack || got > want+slack {
		t.Errorf("%d range requests of %d bytes, want %d of %d ± %d", reqs, got, n, want, slack)
	}
}
