package httpapi_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/config"
)

// pngChunk appends one PNG chunk with its CRC.
func pngChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// pngHeader starts a PNG file declaring w×h 8-bit grey pixels.
func pngHeader(w, h int) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // depth 8, grey, deflate, no filter, no interlace
	return pngChunk(b, "IHDR", ihdr)
}

// zeroPNG is a real w×h all-black grey PNG: a few KiB that decode to
// w×h bytes, the shape of a decompression bomb.
func zeroPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	row := make([]byte, w+1) // filter byte 0, then w zero pixels
	for range h {
		zw.Write(row)
	}
	zw.Close()
	b := pngHeader(w, h)
	b = pngChunk(b, "IDAT", z.Bytes())
	return pngChunk(b, "IEND", nil)
}

// tiffIFD writes a little-endian classic TIFF whose IFDs are given as
// tag→value maps (LONG values), chained in order; loop makes the last IFD
// point back at the first.
func tiffIFDs(ifds []map[uint16]uint32, loop bool) []byte {
	b := []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	first := uint32(8)
	for i, tags := range ifds {
		keys := make([]uint16, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		for a := range keys { // tags must be sorted
			for c := a + 1; c < len(keys); c++ {
				if keys[c] < keys[a] {
					keys[a], keys[c] = keys[c], keys[a]
				}
			}
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(keys)))
		for _, k := range keys {
			b = binary.LittleEndian.AppendUint16(b, k)
			b = binary.LittleEndian.AppendUint16(b, 4) // LONG
			b = binary.LittleEndian.AppendUint32(b, 1)
			b = binary.LittleEndian.AppendUint32(b, tags[k])
		}
		next := uint32(len(b) + 4)
		switch {
		case i == len(ifds)-1 && loop:
			next = first
		case i == len(ifds)-1:
			next = 0
		}
		b = binary.LittleEndian.AppendUint32(b, next)
	}
	return b
}

// oneTileTIFF writes a valid 8-bit grey TIFF of n×n black pixels stored
// as one deflate tile: a few hundred KiB that decode to n² bytes for any
// region of the image.
func oneTileTIFF(t *testing.T, n int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, n)
	for range n {
		zw.Write(row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	const (
		width, height, bits, compression, photometric = 256, 257, 258, 259, 262
		samples, tileWidth, tileLength, tileOffsets   = 277, 322, 323, 324
		tileBytes                                     = 325
	)
	tags := map[uint16]uint32{width: uint32(n), height: uint32(n), bits: 8, compression: 8, photometric: 1, samples: 1,
		tileWidth: uint32(n), tileLength: uint32(n), tileBytes: uint32(z.Len())}
	tags[tileOffsets] = uint32(8 + 2 + 12*(len(tags)+1) + 4)
	b := tiffIFDs([]map[uint16]uint32{tags}, false)
	if len(b) != int(tags[tileOffsets]) {
		t.Fatalf("tile data at %d, IFD ends at %d", tags[tileOffsets], len(b))
	}
	return append(b, z.Bytes()...)
}

// j2kHeader writes a JPEG 2000 codestream with a w×h grey image in
// tw×th tiles, five decomposition levels, and one tile-part of junk data.
func j2kHeader(w, h, tw, th uint32) []byte {
	be := binary.BigEndian
	b := []byte{0xff, 0x4f, 0xff, 0x51}
	b = be.AppendUint16(b, 41)
	b = be.AppendUint16(b, 0)
	for _, v := range []uint32{w, h, 0, 0, tw, th, 0, 0} {
		b = be.AppendUint32(b, v)
	}
	b = append(b, 0, 1, 7, 1, 1)                                   // one 8-bit component
	b = append(b, 0xff, 0x52, 0, 12, 0, 0, 0, 1, 0, 5, 4, 4, 0, 1) // COD: 5 levels, reversible
	b = append(b, 0xff, 0x5c, 0, 19, 0x40)                         // QCD: no quantisation
	b = append(b, bytes.Repeat([]byte{0x40}, 16)...)               // exponents
	b = append(b, 0xff, 0x90, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1)       // SOT
	b = append(b, 0xff, 0x93)                                      // SOD
	return append(append(b, bytes.Repeat([]byte{0x5a}, 256)...), 0xff, 0xd9)
}

// What of a file may be served.
const (
	serveNothing = iota
	serveInfo    // the header is whole: info.json is right
	serveTop     // and the first rows are there: a top-left crop is right
	serveAll     // the bytes are a real image
)

// hostileCorpus writes broken, foreign and hostile files into root, and
// returns their names with what may be served of them.
func hostileCorpus(t *testing.T, root string) map[string]int {
	t.Helper()
	files := map[string][]byte{}
	ok := map[string]int{}
	// Zero bytes and truncations of every sample, at several points.
	for _, ext := range []string{"jpg", "png", "tif", "jp2", "webp", "gif"} {
		files["zero."+ext] = nil
	}
	for _, s := range []string{"mandelbrot.tif", "julia.jpg", "testchart.png", "zoneplate.jp2"} {
		b, err := os.ReadFile(filepath.Join(root, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{16, 200, len(b) / 10, len(b) / 2, len(b) - 100} {
			name := fmt.Sprintf("cut%d-%s", cut, s)
			files[name] = b[:cut]
			switch {
			case cut == len(b)-100:
				// Only the end is missing: whether a decoder notices
				// depends on how far it reads for the plan (libjpeg
				// at 1/8 scale may finish its output first).
				ok[name] = serveAll
			case cut > 16:
				// Headers may be whole, and sequential decoders may
				// have the first rows.
				ok[name] = serveTop
			}
		}
		// Flipped bytes in the middle of the data.
		m := bytes.Clone(b)
		rng := rand.New(rand.NewPCG(uint64(len(b)), 7))
		for range 64 {
			m[len(m)/4+rng.IntN(len(m)/2)] ^= 0xff
		}
		files["mutated-"+s] = m
		ok["mutated-"+s] = serveAll // damage inside pixel data may decode
	}
	// Random bytes under every image extension.
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ext := range []string{"jpg", "png", "tif", "jp2", "webp", "gif", "heic"} {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		files["random."+ext] = b
	}
	// Mislabelled: real images under another format's extension. They
	// are images all the same; serving them by content is fine.
	for from, to := range map[string]string{"testchart.png": "png-as.jpg", "julia.jpg": "jpeg-as.tif", "mandelbrot.tif": "tiff-as.png"} {
		b, _ := os.ReadFile(filepath.Join(root, from))
		files[to] = b
		ok[to] = serveAll
	}
	// Decompression bombs: a header declaring 60000×60000 with a few rows
	// of data, and a real 20000×20000 black PNG (400 MB of pixels in a
	// few hundred KiB).
	files["bomb-header.png"] = pngChunk(pngChunk(pngHeader(60000, 60000), "IDAT", []byte{0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1}), "IEND", nil)
	files["bomb.png"] = zeroPNG(t, 20000, 20000)
	// Absurd TIFFs: 2^31-1 pixels a side with strips pointing nowhere; a
	// huge tiled image with no tile data; an IFD chain that loops; many
	// tiny pages.
	const (
		width, height, bits, compression, photometric   = 256, 257, 258, 259, 262
		stripOffsets, samples, rowsPerStrip, stripBytes = 273, 277, 278, 279
		tileWidth, tileLength, tileOffsets, tileBytes   = 322, 323, 324, 325
	)
	strip := func(w, h uint32) map[uint16]uint32 {
		return map[uint16]uint32{width: w, height: h, bits: 8, compression: 1, photometric: 1,
			stripOffsets: 8, samples: 1, rowsPerStrip: h, stripBytes: 1}
	}
	files["absurd.tif"] = tiffIFDs([]map[uint16]uint32{strip(1<<31-1, 1<<31-1)}, false)
	files["tiled-nodata.tif"] = tiffIFDs([]map[uint16]uint32{{width: 1 << 20, height: 1 << 20, bits: 8, compression: 1,
		photometric: 1, samples: 1, tileWidth: 256, tileLength: 256, tileOffsets: 8, tileBytes: 65536}}, false)
	files["loop.tif"] = tiffIFDs([]map[uint16]uint32{strip(100, 100), strip(50, 50)}, true)
	many := make([]map[uint16]uint32, 5000)
	for i := range many {
		many[i] = strip(1, 1)
	}
	files["manypages.tif"] = tiffIFDs(many, false)
	ok["manypages.tif"] = serveAll // a 1×1 image with 4999 other pages is valid
	ok["tiled-nodata.tif"] = serveInfo

	// Tile bombs (issue 14 item 2): a real TIFF of a few hundred KiB
	// stored as one 10240×10240 deflate tile, 105 Mpx for any crop of
	// it; and JPEG 2000 codestreams whose headers declare one
	// 30000×30000 tile, or 12000×12000 tiles.
	files["onetile.tif"] = oneTileTIFF(t, 10240)
	files["onetile.j2k"] = j2kHeader(30000, 30000, 30000, 30000)
	files["bigtiles.j2k"] = j2kHeader(24000, 24000, 12000, 12000)
	// OpenJPEG may decode their junk data as noise at small reductions;
	// the crops at full resolution are what must be refused (below).
	ok["onetile.j2k"] = serveAll
	ok["bigtiles.j2k"] = serveAll

	for name, b := range files {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]int{}
	for name := range files {
		out[name] = ok[name]
	}
	return out
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestMalformedCorpus serves a corpus of broken, foreign and hostile files
// generated here: every request must answer promptly with a clean status
// (4xx/5xx, or 200 where the bytes are a real image), never a crash, a
// hang or a leaked path, and the server must stay healthy and leak no
// file descriptors.
func TestMalformedCorpus(t *testing.T) {
	srv, root := server(t, func(c *config.Config) { c.MaxSourcePixels = 100_000_000 })
	corpus := hostileCorpus(t, root)
	before := openFDs(t)
	paths := []struct {
		path string
		ok   int // served from this level of wholeness up
	}{
		{"info.json", serveInfo},
		{"0,0,64,64/64,/0/default.png", serveTop},
		{"full/256,/0/default.jpg", serveAll},
		{"full/max/0/default.jpg", serveAll},
	}
	for name, whole := range corpus {
		for _, pp := range paths {
			p, okToServe := pp.path, whole >= pp.ok
			url := srv.URL + "/iiif/3/" + name + "/" + p
			done := make(chan resp, 1)
			start := time.Now()
			go func() { done <- get(t, url) }()
			var r resp
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s/%s: no answer after 20 s", name, p)
			}
			d := time.Since(start)
			switch {
			case r.status == 200 && !okToServe:
				t.Errorf("%s/%s: 200 for a broken file", name, p)
			case r.status != 200 && (r.status < 400 || r.status > 504):
				t.Errorf("%s/%s: status %d", name, p, r.status)
			}
			if bytes.Contains(r.body, []byte(root)) {
				t.Errorf("%s/%s: the answer leaks the root path: %s", name, p, r.body)
			}
			if r.status >= 400 && !bytes.Contains(r.body, []byte(fmt.Sprint(r.status))) {
				t.Errorf("%s/%s: error body %q does not say its status", name, p, r.body)
			}
			if d > 10*time.Second {
				t.Errorf("%s/%s: took %v", name, p, d)
			}
		}
	}
	// The bombs are refused from their headers, with the reason; a tile
	// bomb for a one-pixel crop too.
	for _, path := range []string{"bomb-header.png/full/256,/0/default.jpg", "bomb.png/full/256,/0/default.jpg",
		"onetile.tif/0,0,1,1/max/0/default.png", "onetile.tif/info.json",
		"onetile.j2k/0,0,1,1/max/0/default.png", "bigtiles.j2k/0,0,1,1/max/0/default.png"} {
		r := get(t, srv.URL+"/iiif/3/"+path)
		if r.status != 501 || !strings.Contains(string(r.body), "maxSourcePixels") {
			t.Errorf("%s: %d %s, want 501 naming maxSourcePixels", path, r.status, r.body)
		}
	}
	if r := get(t, srv.URL+"/healthz"); r.status != 200 {
		t.Errorf("healthz after the corpus: %d", r.status)
	}
	if r := get(t, srv.URL+"/iiif/3/julia.jpg/full/256,/0/default.jpg"); r.status != 200 {
		t.Errorf("a good image after the corpus: %d %s", r.status, r.body)
	}
	// Opened files are shared for about a second; then all are closed.
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > before+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if after := openFDs(t); after > before+2 {
		ents, _ := os.ReadDir("/proc/self/fd")
		var open []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			open = append(open, l)
		}
		t.Errorf("open file descriptors: %d before the corpus, %d after: %v", before, after, open)
	}
}

// TestHangUpStopsWork starts expensive renders, hangs up, and checks that
// the process's CPU goes idle: the pipelines were stopped, not left to
// run to their end for nobody.
func TestHangUpStopsWork(t *testing.T) {
	srv, root := server(t, func(c *config.Config) { c.Workers = 4 })
	// Noise: deflate finds nothing to compress, so the encode is slow.
	noise := image.NewGray(image.Rect(0, 0, 500, 500))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise.Pix {
		noise.Pix[i] = byte(rng.Uint32())
	}
	var buf bytes.Buffer
	png.Encode(&buf, noise)
	os.WriteFile(filepath.Join(root, "small.png"), buf.Bytes(), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 4)
	for i := range 4 {
		// Upscaled to about 100 Mpx, turned and encoded as PNG: many
		// seconds of work.
		url := fmt.Sprintf("%s/iiif/3/small.png/full/^%d,/45/default.png", srv.URL, 7000-i)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					err = fmt.Errorf("status %d: %.200s", res.StatusCode, b)
					t.Error(err)
				}
			}
			errs <- err
		}()
	}
	busyFrom := cpuTime()
	time.Sleep(1500 * time.Millisecond)
	busy := cpuTime() - busyFrom
	cancel()
	for range 4 {
		if err := <-errs; err == nil {
			t.Fatal("a render finished before the hang-up; make it bigger")
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("the request failed on its own: %v", err)
		}
	}
	time.Sleep(time.Second) // about a second to stop
	idleFrom := cpuTime()
	time.Sleep(time.Second)
	idle := cpuTime() - idleFrom
	t.Logf("CPU in 1.5 s while rendering: %v; in 1 s after the hang-up: %v", busy, idle)
	if busy < 500*time.Millisecond {
		t.Fatalf("the renders used only %v of CPU in 1.5 s: the test measures nothing", busy)
	}
	if idle > 150*time.Millisecond {
		t.Errorf("CPU after the hang-up: %v in 1 s, want idle", idle)
	}
}

// TestClientLimit: one client's burst beyond --client-limit gets 429 with
// Retry-After, while another client is still served.
func TestClientLimit(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) {
		c.Workers, c.ClientLimit, c.ClientIPHeader = 1, 1, "X-Forwarded-For"
	})
	type result struct {
		client string
		r      resp
	}
	results := make(chan result, 5)
	for i, client := range []string{"198.51.100.7", "198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.9"} {
		go func() {
			url := fmt.Sprintf("%s/iiif/3/julia.jpg/full/%d,/0/default.png", srv.URL, 1500+i)
			results <- result{client, do(t, "GET", url, map[string]string{"X-Forwarded-For": "10.0.0.1, " + client})}
		}()
	}
	got := map[string]map[int]int{}
	for range 5 {
		res := <-results
		if got[res.client] == nil {
			got[res.client] = map[int]int{}
		}
		got[res.client][res.r.status]++
		if res.r.status == 429 && res.r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if g := got["198.51.100.7"]; g[429] == 0 || g[200] == 0 || g[200]+g[429] != 4 {
		t.Errorf("the greedy client's statuses: %v, want some 200 and the rest 429", g)
	}
	if g := got["203.0.113.9"]; g[200] != 1 {
		t.Errorf("the other client's statuses: %v, want 200", g)
	}
}

// TestRotatedLimits: the limits bound the image as delivered, after
// rotation, and are checked before any pixel work (issue 14 item 3): a
// rotated "max" shrinks to fit, an explicit size whose rotated box is
// over a limit (the encoder's own included, WebP's 16383) gets a 400 that
// names the limit.
func TestRotatedLimits(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.MaxArea = 1_000_000; c.MaxWidth = 20000 })
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"mandelbrot.tif/full/max/45/default.png", 200, ""},
		{"mandelbrot.tif/full/max/30/default.png", 200, ""},
		{"testchart.png/full/max/90/default.png", 200, ""},
		{"mandelbrot.tif/full/900,/45/default.png", 400, "maxArea 1000000"},
	} {
		r := get(t, srv.URL+"/iiif/3/"+tc.path)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s: %d %.200s, want %d %q", tc.path, r.status, r.body, tc.status, tc.msg)
			continue
		}
		if r.status == 200 {
			b := decode(t, r.body).Bounds()
			if int64(b.Dx())*int64(b.Dy()) > 1_000_000 {
				t.Errorf("%s: %v, more than maxArea", tc.path, b)
			}
		}
	}
	// WebP cannot encode more than 16383 pixels a side: the rotated box
	// of this strip is over it, so the plan refuses it before libvips
	// spends a second on it and fails.
	srv, _ = server(t, func(c *config.Config) { c.MaxArea = 0; c.MaxWidth = 20000 })
	r := get(t, srv.URL+"/iiif/3/mandelbrot.tif/0,0,1200,146/^16383,/10/default.webp")
	if r.status != 400 || !strings.Contains(string(r.body), "16383 for format webp") {
		t.Errorf("webp over its encoder limit after rotation: %d %.300s", r.status, r.body)
	}
}
