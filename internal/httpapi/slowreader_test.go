package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/output"
)

// openSpills counts the open spilled files of output buffers under dir.
func openSpills(t *testing.T, dir string) int {
	t.Helper()
	n, err := output.OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stalledGet connects with a 4 KiB receive buffer, sends a GET of path
// and never reads the answer: a client that takes the first few KiB of a
// large image and then nothing.
func stalledGet(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds, or fails after a generous bound (a
// state to reach, not a speed to measure).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never reached: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowReadersHoldNoWorker is issue 14's slow-reader attack: more
// clients than workers ask for large outputs (a 2000×2000 noise PNG as a
// 12 MB TIFF) with a 4 KiB receive buffer and never read. Their renders
// must end and give their workers back (their bodies wait in spilled
// files, not in memory), so that another client's request is admitted
// without waiting and answered; memory stays within --memory-limit; the
// files are gone when the clients hang up, or when they stall past the
// write deadline.
func TestSlowReadersHoldNoWorker(t *testing.T) {
	root, spill := noiseRoot(t), t.TempDir()
	cfg := config.Default()
	cfg.Root = root
	cfg.Workers, cfg.QueueTimeout = 2, 3*time.Second
	cfg.MemoryLimit = 256 << 20
	cfg.SpillDir = spill
	cfg.RequestTimeout = 10 * time.Second // also the write deadline of each chunk
	a, srv := apptest.Serve(t, cfg)
	adm := a.Admitter()
	u, _ := url.Parse(srv.URL)

	const stalled = 4 // twice the workers
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = stalledGet(t, u.Host, fmt.Sprintf("/iiif/3/noise.png/full/%d,/0/default.tif", 1999-i))
	}
	// Every render ends with its body in a file: no worker is held.
	waitFor(t, "every stalled response spilled, no render running", func() bool {
		return openSpills(t, spill) == stalled && adm.Stats().Running == 0
	})
	st := adm.Stats()
	if st.Memory+st.Held+st.Output > int64(cfg.MemoryLimit) || st.Output > int64(cfg.MemoryLimit)/4 {
		t.Errorf("admission state %+v over the memory limit %d", st, cfg.MemoryLimit)
	}
	// Another client's request is admitted at once and answered.
	waited := adm.Waited()
	if r := get(t, srv.URL+"/iiif/3/small.png/full/150,/0/default.png"); r.status != 200 {
		t.Fatalf("a request while %d clients stall: %d %s", stalled, r.status, r.body)
	}
	if w := adm.Waited(); w != waited {
		t.Errorf("the request waited for admission (%d waits) while clients stalled", w-waited)
	}
	// The stalled clients did receive the start of a 200.
	br := bufio.NewReader(conns[0])
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 || res.ContentLength < 10<<20 {
		t.Fatalf("a stalled client's answer: %v, %v", res, err)
	}
	// Hanging up midway frees the files.
	for _, c := range conns[:2] {
		c.Close()
	}
	waitFor(t, "the files of the clients that hung up closed", func() bool { return openSpills(t, spill) == stalled-2 })
	// The others, which neither read nor hang up, are dropped at the
	// write deadline; their files go with them.
	waitFor(t, "the files of the clients past the write deadline closed", func() bool { return openSpills(t, spill) == 0 })
	if names, _ := os.ReadDir(spill); len(names) != 0 {
		t.Errorf("the spill folder holds %d files", len(names))
	}
	if st := adm.Stats(); st.Output != 0 || st.Running != 0 || st.Memory != 0 {
		t.Errorf("admission state %+v once every client is gone", st)
	}
}

// TestWriteTimeoutBoundsDelivery: a client that takes each chunk just in
// time for the per-chunk deadline is still cut off at --write-timeout,
// which the chunks' deadlines never reach past; here one that never
// reads, with a request timeout far longer than the write timeout.
func TestWriteTimeoutBoundsDelivery(t *testing.T) {
	cfg := config.Default()
	cfg.Root, cfg.SpillDir = noiseRoot(t), t.TempDir()
	cfg.RequestTimeout, cfg.WriteTimeout = 5*time.Minute, 2*time.Second
	_, srv := apptest.Serve(t, cfg)
	u, _ := url.Parse(srv.URL)
	stalledGet(t, u.Host, "/iiif/3/noise.png/full/1999,/0/default.tif")
	waitFor(t, "the stalled response spilled", func() bool { return openSpills(t, cfg.SpillDir) == 1 })
	waitFor(t, "the stalled response dropped at the write timeout", func() bool { return openSpills(t, cfg.SpillDir) == 0 })
}

// noiseRoot returns a folder with noise.png, 2000×2000 RGB noise (a 12 MB
// TIFF however it is asked for), and small.png.
func noiseRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	noise := image.NewNRGBA(image.Rect(0, 0, 2000, 2000))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range noise.Pix {
		noise.Pix[i] = byte(rng.Uint32())
		if i%4 == 3 {
			noise.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&buf, noise); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "noise.png"), buf.Bytes(), 0o644)
	writePNG(t, filepath.Join(root, "small.png"), 300, 200)
	return root
}

// TestTruncatedJPEG is issue 22's truncated file: a JPEG cut at 60% of
// its length, asked for as a thumbnail ten times, gets the same answer
// every time, a clean error status with its message (libvips loads with
// fail_on=error, and the image is encoded whole before the status line
// is written), never a 200 whose body stops midway.
func TestTruncatedJPEG(t *testing.T) {
	srv, root := server(t, nil)
	b, err := os.ReadFile(filepath.Join(root, "julia.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "cut.jpg"), b[:len(b)*6/10], 0o644)
	var first resp
	for i := range 10 {
		r := get(t, srv.URL+"/iiif/3/cut.jpg/full/!512,512/0/default.png")
		if i == 0 {
			first = r
			t.Logf("answer: %d %s", r.status, r.body)
		}
		if r.status != first.status {
			t.Errorf("request %d: %d, the first was %d", i, r.status, first.status)
		}
		if r.status != http.StatusInternalServerError || !bytes.Contains(r.body, []byte("500")) {
			t.Errorf("request %d: %d %.200s, want a clean 500", i, r.status, r.body)
		}
		if r.header.Get("X-Cache") != "" || r.header.Get("ETag") != "" {
			t.Errorf("request %d: an error with the validators of an image: %v", i, r.header)
		}
	}
}
