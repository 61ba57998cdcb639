package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
	"github.com/iiifd/iiifd/internal/source/ranged"
)

// slowStore serves the objects of another source as a remote store
// would: through a ranged.Store with a block cache, every range request
// taking delay. inSlot, when set, is asked at each request whether a
// render holds a worker slot; such requests are counted.
type slowStore struct {
	source.Source
	store  *ranged.Store
	cache  *ranged.Cache // the store's block cache
	delay  time.Duration
	fail   func(off, n int64) bool // requests to fail, when set
	inSlot func() bool
	during atomic.Int64 // requests made while inSlot said true
	// stall, when set, holds the requests made while inSlot says true
	// until it is closed, whatever their context: a store that answers
	// late.
	stall chan struct{}
}

func (s *slowStore) Open(ctx context.Context, key string) (*source.Object, error) {
	obj, err := s.Source.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	file := obj.ReaderAt
	rd := s.store.Open(ctx, key+"\x00"+obj.Version, obj.Size, func(ctx context.Context, off int64, p []byte) error {
		if s.inSlot != nil && s.inSlot() {
			s.during.Add(1)
			if s.stall != nil {
				<-s.stall
			}
		}
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.fail != nil && s.fail(off, int64(len(p))) {
			return errors.New("connection reset by peer")
		}
		_, err := file.ReadAt(p, off)
		return err
	})
	return &source.Object{
		ReaderAt: rd, Closer: closers{rd, obj}, Key: obj.Key, Size: obj.Size,
		ModTime: obj.ModTime, Version: obj.Version,
	}, nil
}

type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for _, cl := range c {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// slowService serves the 4096² pyramidal TIFF of pyramidRoot from a store
// delay away, through an admitter of one worker.
func slowService(t *testing.T, delay time.Duration) (*service.Service, *slowStore, *limit.Admitter, string) {
	t.Helper()
	return slowServiceWith(t, delay, limit.Config{Workers: 1, Queue: 64, QueueTimeout: time.Minute})
}

// slowServiceWith is slowService admitting renders under cfg.
func slowServiceWith(t *testing.T, delay time.Duration, cfg limit.Config) (*service.Service, *slowStore, *limit.Admitter, string) {
	t.Helper()
	root, _ := pyramidRoot(t)
	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	cache := ranged.NewCache(64 << 20)
	src := &slowStore{Source: files, store: ranged.NewStore(ranged.Config{Cache: cache}), cache: cache, delay: delay}
	adm, err := limit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Limits: app.Limits(config.Default()), TileSize: 512, Admit: adm}, src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Info(t.Context(), iiif.V3, "big.tif", "http://x"); err != nil {
		t.Fatal(err)
	}
	return svc, src, adm, root
}

// TestRefusedFetchesNothing fills the queue, then a client's share: the
// renders refused make no request of the store, and are refused as
// before (503 with the queue full, 429 over the share).
func TestRefusedFetchesNothing(t *testing.T) {
	svc, src, adm, _ := slowServiceWith(t, 5*time.Millisecond, limit.Config{Workers: 1, Queue: 2, PerClient: 2})
	greedy := limit.WithClient(t.Context(), "192.0.2.1")
	var places []*limit.Place
	defer func() {
		for _, p := range places {
			p.Release()
		}
	}()
	for range 2 {
		p, err := adm.Reserve(greedy)
		if err != nil {
			t.Fatal(err)
		}
		places = append(places, p)
	}
	before := src.store.Stats()
	err := renderTile(greedy, svc, 4, 4)
	if status, _ := fault.Status(err); !errors.Is(err, limit.ErrClientShare) || status != http.StatusTooManyRequests {
		t.Errorf("render over the client's share = %v (%d), want ErrClientShare, a 429", err, status)
	}
	p, err := adm.Reserve(t.Context()) // the worker's room and the queue are taken
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, p)
	err = renderTile(t.Context(), svc, 5, 5)
	if status, _ := fault.Status(err); !errors.Is(err, limit.ErrQueueFull) || status != http.StatusServiceUnavailable {
		t.Errorf("render with the queue full = %v (%d), want ErrQueueFull, a 503", err, status)
	}
	if reqs := src.store.Stats().Requests - before.Requests; reqs != 0 {
		t.Errorf("refused renders made %d requests of the store, want 0", reqs)
	}
	for _, p := range places {
		p.Release()
	}
	places = nil
	if err := renderTile(greedy, svc, 4, 4); err != nil {
		t.Fatalf("render once places were given back: %v", err)
	}
	if reqs := src.store.Stats().Requests - before.Requests; reqs == 0 {
		t.Error("an admitted render made no request: the test proves nothing")
	}
}

// TestPrefetchBudgetFollowsMemory renders a region of nine tiles (about
// 360 KiB stored) under two memory budgets: with a quarter of the budget
// below the tiles' bytes they are read as the render decodes (requests
// while it holds the worker), above it they are fetched ahead.
func TestPrefetchBudgetFollowsMemory(t *testing.T) {
	req, err := iiif.ParseImage(iiif.V3, "1000,1000,300,300", "200,", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		memory int64
		ahead  bool
	}{{256 << 10, false}, {64 << 20, true}} {
		svc, src, adm, _ := slowServiceWith(t, time.Millisecond, limit.Config{Workers: 1, Memory: tc.memory})
		src.inSlot = func() bool { return adm.Stats().Running > 0 }
		render(t, svc, "big.tif", req)
		if ahead := src.during.Load() == 0; ahead != tc.ahead {
			t.Errorf("memory budget %d: fetched ahead %v, want %v (%d requests in the slot)", tc.memory, ahead, tc.ahead, src.during.Load())
		}
		if st := adm.Stats(); st != (limit.Stats{}) {
			t.Errorf("admitter state %+v after the render, want none", st)
		}
	}
}

// renderTile renders the full-resolution tile at column x, row y as PNG:
// decoded and encoded, never passed through.
func renderTile(ctx context.Context, svc *service.Service, x, y int) error {
	req, err := iiif.ParseImage(iiif.V3, fmt.Sprintf("%d,%d,256,256", x*256, y*256), "256,", "0", "default.png")
	if err != nil {
		return err
	}
	job, err := svc.Image(ctx, "big.tif", req)
	if err != nil {
		return err
	}
	defer job.Close()
	var out bytes.Buffer
	return renderTo(ctx, job, &out)
}

// TestPrefetchHoldsNoSlot renders distinct tiles of a TIFF in a store
// 100 ms away with one worker: the renders wait for the store before they
// are admitted, so eight at once take about the time of one round trip
// or two (the offset arrays, then the tiles), not eight; a render makes
// no request while it holds the worker; and the bytes fetched are the
// tiles' own.
func TestPrefetchHoldsNoSlot(t *testing.T) {
	const delay = 100 * time.Millisecond
	svc, src, adm, root := slowService(t, delay)
	src.inSlot = func() bool { return adm.Stats().Running > 0 }

	// The bytes of each tile, from the file itself.
	files, _ := fs.New(root)
	obj, err := files.Open(t.Context(), "big.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	hdr, err := probe.Read(obj, obj.Size)
	if err != nil {
		t.Fatal(err)
	}
	l0 := hdr.Levels[0].TIFF
	tileBytes := func(x, y int) int64 {
		br, err := l0.TileRange(obj, y*16+x)
		if err != nil {
			t.Fatal(err)
		}
		return br.Length
	}

	// The first render also reads what libvips reads besides tiles (the
	// header's and IFDs' read windows, the offset arrays) that info.json
	// did not; later ones only their tiles, one request each. None makes
	// a request while it holds the worker.
	if err := renderTile(t.Context(), svc, 15, 15); err != nil {
		t.Fatal(err)
	}
	before, cached := src.store.Stats(), src.cache.Bytes()
	var want int64
	for i := range 3 {
		if err := renderTile(t.Context(), svc, i, 2*i); err != nil {
			t.Fatal(err)
		}
		want += tileBytes(i, 2*i)
	}
	if n := src.during.Load(); n != 0 {
		t.Errorf("%d range requests while a render held the worker, want 0", n)
	}
	after := src.store.Stats()
	got, reqs := after.Bytes-before.Bytes, after.Requests-before.Requests
	// Tiles fetched ahead are their own bytes (bypassing the block
	// cache); read through it, each would be rounded out to 4 KiB
	// blocks at both ends.
	const slack = 3 * 2 * ranged.BlockSize
	if limit := want + slack; got < want-slack || got > limit || reqs != 3 {
		t.Errorf("3 tiles of %d bytes fetched %d bytes in %d requests, want %d to %d in 3", want, got, reqs, want, limit)
	}
	t.Logf("3 tiles (%d bytes): %d requests, %d bytes", want, reqs, got)
	// The render holds its tiles: they bypass the block cache rather
	// than being held twice.
	if grew := src.cache.Bytes() - cached; grew != 0 {
		t.Errorf("the block cache grew by %d bytes with 3 tiles fetched ahead, want 0", grew)
	}

	// A region across 3×3 tiles, scaled: the tiles of each row lie
	// together in the file, so each row is one request.
	before = src.store.Stats()
	req, err := iiif.ParseImage(iiif.V3, "1000,1000,300,300", "200,", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	render(t, svc, "big.tif", req)
	after = src.store.Stats()
	want = 0
	for y := 3; y <= 5; y++ {
		for x := 3; x <= 5; x++ {
			want += tileBytes(x, y)
		}
	}
	got, reqs = after.Bytes-before.Bytes, after.Requests-before.Requests
	if limit := want + slack; got < want-slack || got > limit || reqs != 3 {
		t.Errorf("9 tiles of %d bytes in 3 rows fetched %d bytes in %d requests, want %d to %d in 3", want, got, reqs, want, limit)
	}
	if n := src.during.Load(); n != 0 {
		t.Errorf("%d range requests while a render held the worker, want 0", n)
	}

	// Eight at once, all waiting for the store together.
	src.inSlot = nil
	const n = 8
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = renderTile(t.Context(), svc, 8+i%8, 3+i/8)
		}()
	}
	wg.Wait()
	took := time.Since(began)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if st := adm.Stats(); st != (limit.Stats{}) {
		t.Errorf("admitter state %+v after every render ended, want none", st)
	}
	t.Logf("%d renders at once with one worker, %s a request: %s", n, delay, took)
	if took > n*delay/2 {
		t.Errorf("%d renders took %s; with no slot held while fetching, want well under %s", n, took, n*delay)
	}
}

// TestPrefetchFailure fails the store's requests for the tiles: the
// render is a 502 that names no internals, made before admission, and
// a client that goes away mid-fetch gets its context's error at once and
// leaves no goroutine behind.
func TestPrefetchFailure(t *testing.T) {
	svc, src, adm, _ := slowService(t, time.Millisecond)
	var admitted atomic.Int64
	src.inSlot = func() bool {
		if adm.Stats().Running > 0 {
			admitted.Add(1)
		}
		return false
	}
	src.fail = func(off, n int64) bool { return n > 8<<10 } // tiles, not headers
	err := renderTile(t.Context(), svc, 5, 5)
	if status, msg := fault.Status(err); status != http.StatusBadGateway {
		t.Fatalf("render = %v (%d %q), want a 502", err, status, msg)
	}
	if admitted.Load() != 0 {
		t.Errorf("the failing fetch was made by an admitted render")
	}

	src.fail, src.delay = nil, time.Hour
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = renderTile(ctx, svc, 6, 6)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 5*time.Second {
		t.Fatalf("render = %v after %s, want the context's deadline at once", err, time.Since(began))
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base {
		t.Errorf("%d goroutines after the render, %d before", g, base)
	}
	if st := adm.Stats(); st != (limit.Stats{}) {
		t.Errorf("admitter state %+v after failed renders, want none", st)
	}
}

// TestPassthroughOneRequest passes stored tiles of a TIFF in a slow store
// through: once a tile of the level has been served (and its offset
// arrays read ahead), each further tile costs one request, for its own
// bytes, and no admission.
func TestPassthroughOneRequest(t *testing.T) {
	svc, src, adm, _ := slowService(t, 20*time.Millisecond)
	var admitted atomic.Int64
	src.inSlot = func() bool {
		if adm.Stats().Running > 0 {
			admitted.Add(1)
		}
		return false
	}
	tile := func(x, y int) *service.Job {
		req, err := iiif.ParseImage(iiif.V3, fmt.Sprintf("%d,%d,256,256", x*256, y*256), "256,", "0", "default.jpg")
		if err != nil {
			t.Fatal(err)
		}
		job, err := svc.Image(t.Context(), "big.tif", req)
		if err != nil {
			t.Fatal(err)
		}
		defer job.Close()
		if err := renderTo(t.Context(), job, io.Discard); err != nil {
			t.Fatal(err)
		}
		return job
	}
	if !tile(7, 7).Passthrough {
		t.Fatal("an aligned JPEG tile was not passed through")
	}
	before := src.store.Stats()
	for i := range 4 {
		tile(i, 12-i)
	}
	if reqs := src.store.Stats().Requests - before.Requests; reqs != 4 {
		t.Errorf("4 stored tiles cost %d requests, want 4", reqs)
	}
	if admitted.Load() != 0 {
		t.Errorf("stored tiles were fetched by admitted work")
	}
}

// TestPrefetchTooManyTiles renders a region of more tiles than a render
// fetches ahead (4,761 tiles of 16×16): it takes the old path, reading
// its tiles as libvips decodes them, and is right all the same.
func TestPrefetchTooManyTiles(t *testing.T) {
	root := t.TempDir()
	noise := filepath.Join(t.TempDir(), "noise.v")
	vips(t, "gaussnoise", noise, "1100", "1100", "--sigma", "40")
	vips(t, "cast", noise, filepath.Join(root, "small.tif")+"[tile,tile-width=16,tile-height=16,compression=jpeg,Q=90]", "uchar")
	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := limit.New(limit.Config{Workers: 1, Queue: 8, QueueTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src := &slowStore{Source: files, store: ranged.NewStore(ranged.Config{Cache: ranged.NewCache(64 << 20)}), delay: time.Millisecond}
	src.inSlot = func() bool { return adm.Stats().Running > 0 }
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Limits: app.Limits(config.Default()), TileSize: 512, Admit: adm}, src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	req, err := iiif.ParseImage(iiif.V3, "full", "max", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	img := render(t, svc, "small.tif", req)
	if b := img.Bounds(); b.Dx() != 1100 || b.Dy() != 1100 {
		t.Errorf("size %v, want 1100x1100", b)
	}
	if src.during.Load() == 0 {
		t.Errorf("no request while the render held the worker: its tiles were fetched ahead")
	}
	if st := adm.Stats(); st != (limit.Stats{}) {
		t.Errorf("admitter state %+v after the render, want none", st)
	}
}

// TestPrefetchHeldPastAbandonedRead renders a tile whose tiles were
// fetched ahead but whose other bytes are not held, from a store that
// stalls the reads libvips makes: the client goes away, and the render
// gives its worker back at once, but its tiles' bytes stay held against the budget
// while the read it abandoned (which keeps them reachable) is under way,
// and are given back when it ends.
func TestPrefetchHeldPastAbandonedRead(t *testing.T) {
	svc, src, adm, _ := slowServiceWith(t, time.Millisecond, limit.Config{Workers: 1, Memory: 64 << 20})
	service.SetHeadsBound(svc, 1)
	req, err := iiif.ParseImage(iiif.V3, "512,512,256,256", "256,", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	// The object reads under the context it was opened with, which
	// outlives the render's.
	job, err := svc.Image(t.Context(), "big.tif", req)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	src.stall = make(chan struct{})
	src.inSlot = func() bool { return adm.Stats().Running > 0 }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var held atomic.Int64
	go func() {
		// Once libvips waits for the store, with the worker: what the
		// render holds besides its cost; then the client goes away.
		defer cancel()
		for ctx.Err() == nil {
			if src.during.Load() > 0 {
				held.Store(adm.Stats().Memory - service.Cost(&job.Plan))
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	err = renderTo(ctx, job, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("render = %v, want the render's context's error", err)
	}
	if src.during.Load() == 0 {
		t.Fatal("the render read nothing from the store while it held the worker: nothing was abandoned")
	}
	st := adm.Stats()
	if h := held.Load(); h <= 0 || st.Running != 0 || st.Reserved != 0 || st.Held != h {
		t.Errorf("admitter state %+v while the abandoned read is under way; want no work and the %d bytes fetched ahead held", st, h)
	}
	close(src.stall)
	deadline := time.Now().Add(5 * time.Second)
	for adm.Stats() != (limit.Stats{}) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := adm.Stats(); st != (limit.Stats{}) {
		t.Errorf("admitter state %+v after the abandoned read ended, want none", st)
	}
}
