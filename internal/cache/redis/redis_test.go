package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/cachetest"
	"github.com/iiifd/iiifd/internal/cache/memory"
	"github.com/iiifd/iiifd/internal/cache/redis"
	"github.com/iiifd/iiifd/internal/cache/redis/redistest"
)

func startServer(t *testing.T) *redistest.Server { return redistest.Start(t) }

var prefixes atomic.Int64

func newTier(t *testing.T, cfg redis.Config) *redis.Tier {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("test%d:", prefixes.Add(1)) // an empty cache per test
	}
	r, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestConformance(t *testing.T) {
	s := startServer(t)
	cachetest.Run(t, cachetest.Options{
		New:      func(t *testing.T) cache.Tier { return newTier(t, redis.Config{URL: s.URL(), Timeout: 2 * time.Second}) },
		MaxEntry: 4 << 20,
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []redis.Config{{}, {URL: "http://x"}, {URL: "redis://x", TTL: -1}, {URL: "redis://x", TTL: time.Microsecond}, {URL: "redis://x", Timeout: -1}} {
		if _, err := redis.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

func TestTTL(t *testing.T) {
	s := startServer(t)
	r := newTier(t, redis.Config{URL: s.URL(), TTL: 300 * time.Millisecond})
	k := cache.Key{ID: "a", Name: "b"}
	if err := cachetest.Put(t, r, k, []byte("short-lived")); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := cachetest.Read(t, r, k); !ok {
		t.Fatal("miss right after Put")
	}
	time.Sleep(500 * time.Millisecond)
	if _, _, ok := cachetest.Read(t, r, k); ok {
		t.Fatal("hit after TTL")
	}
}

func TestPurgeAcrossReplicas(t *testing.T) {
	s := startServer(t)
	cfg := redis.Config{URL: s.URL(), Prefix: "shared:"}
	ra, rb := newTier(t, cfg), newTier(t, cfg)
	mem := func() cache.Tier {
		m, err := memory.New(memory.Config{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ca, _ := cache.New(cache.Config{}, mem(), ra)
	cb, _ := cache.New(cache.Config{}, mem(), rb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ca.Watch(ctx)
	go cb.Watch(ctx)
	time.Sleep(100 * time.Millisecond) // let the subscriptions start

	k := cache.Key{ID: "img.tif", Name: "full/max/0/default.jpg v1"}
	other := cache.Key{ID: "other.tif", Name: "x"}
	for _, key := range []cache.Key{k, other} {
		_, fill, _ := ca.Lookup(ctx, key)
		fill.Write(cachetest.Body(key, 1000))
		fill.Commit(cachetest.Meta(key))
	}
	// Replica B finds it in Redis and promotes it into its memory.
	for _, want := range []string{"redis", "memory"} {
		h, _, err := cb.Lookup(ctx, k)
		if err != nil || h == nil || h.Tier != want {
			t.Fatalf("replica B: %+v %v, want a hit from %s", h, err, want)
		}
		io.Copy(io.Discard, h.Body)
		h.Body.Close()
	}
	// A purge on replica A removes it from Redis and from B's memory.
	if err := ca.Purge(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h, fill, err := cb.Lookup(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			fill.Abort()
			break
		}
		h.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("replica B still answers from %s after a purge on A", h.Tier)
		}
	}
	if h, _, _ := cb.Lookup(ctx, other); h == nil {
		t.Fatal("purge removed another identifier")
	} else {
		h.Body.Close()
	}
}

func TestCommitAfterPurgeOnAnotherReplicaIsDropped(t *testing.T) {
	s := startServer(t)
	cfg := redis.Config{URL: s.URL(), Prefix: "shared:"}
	ra, rb := newTier(t, cfg), newTier(t, cfg)
	k := cache.Key{ID: "img.tif", Name: "tile"}
	w, err := ra.Create(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("computed from the old source"))
	rb.Purge(context.Background(), k.ID)
	w.Commit(cachetest.Meta(k))
	if _, _, ok := cachetest.Read(t, rb, k); ok {
		t.Fatal("an entry begun before a purge was stored after it")
	}
}

func TestOutageDegradesToMiss(t *testing.T) {
	s := startServer(t)
	const timeout, backoff = 200 * time.Millisecond, 300 * time.Millisecond
	r := newTier(t, redis.Config{URL: s.URL(), Timeout: timeout, Backoff: backoff})
	m, _ := memory.New(memory.Config{MaxBytes: 1 << 20})
	c, _ := cache.New(cache.Config{}, m, r)
	k := cache.Key{ID: "a", Name: "b"}
	if err := cachetest.Put(t, r, k, []byte("stored")); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	// Every operation gives up on its own: none waits for the caller's
	// deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 5 {
		if _, err := r.Get(ctx, k); err == nil || errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get during an outage: %v, want a fault", err)
		}
		if _, err := r.Create(ctx, k); err == nil {
			t.Fatal("Create during an outage: no error")
		}
		// Through the Cache it is just a miss, and filling works.
		h, fill, err := c.Lookup(ctx, cache.Key{ID: "a", Name: strconv.Itoa(i)})
		if err != nil || h != nil || fill == nil {
			t.Fatalf("Lookup during an outage: %v %v %v", h, fill, err)
		}
		fill.Write([]byte("pixels"))
		fill.Commit(cachetest.Meta(k))
		if ctx.Err() != nil {
			t.Fatal("operations during an outage waited for the caller's deadline")
		}
	}

	s.Restart()
	time.Sleep(backoff + 50*time.Millisecond)
	// The first call after the back-off may meet a dead pooled connection;
	// the tier must work again within a few calls.
	var err error
	for range 3 {
		if err = cachetest.Put(t, r, k, []byte("again")); err == nil {
			break
		}
		time.Sleep(backoff + 50*time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Put after Redis came back: %v", err)
	}
	if got, _, ok := cachetest.Read(t, r, k); !ok || !bytes.Equal(got, []byte("again")) {
		t.Fatal("Get after Redis came back: miss")
	}
}

func TestUnresponsiveServerTimesOut(t *testing.T) {
	// A server that accepts connections and never answers, as a hung or
	// partitioned Redis does. It counts the connections made to it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			defer c.Close()
		}
	}()
	const timeout = 150 * time.Millisecond
	r := newTier(t, redis.Config{URL: "redis://" + l.Addr().String() + "/0", Timeout: timeout, Backoff: time.Minute})
	k := cache.Key{ID: "a", Name: "b"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The tier's own timeout ends the call, long before the caller's.
	if _, err := r.Get(ctx, k); err == nil || errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get from a hung server: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Get from a hung server waited for the caller's deadline")
	}
	// Within the back-off the tier does not try the server at all.
	before := conns.Load()
	for range 10 {
		if _, err := r.Get(ctx, k); !errors.Is(err, cache.ErrUnavailable) {
			t.Fatalf("Get during back-off: %v, want ErrUnavailable", err)
		}
	}
	if n := conns.Load() - before; n != 0 {
		t.Fatalf("%d connections to the server during back-off, want none", n)
	}
}

// TestStampedeAcrossReplicas: replicas sharing one Redis that miss the
// same key at once compute it once; the others wait for the entry and are
// answered from Redis. When the computing replica gives up, a waiting one
// takes over instead of waiting for the claim to expire.
func TestStampedeAcrossReplicas(t *testing.T) {
	s := startServer(t)
	cfg := redis.Config{URL: s.URL(), Prefix: fmt.Sprintf("stampede%d:", prefixes.Add(1))}
	var replicas []*cache.Cache
	// Claims last far longer than the test waits for anything: a waiting
	// replica that takes over can only have seen the claim end, never
	// expire (nor given up waiting at its deadline).
	const claimTTL = 10 * time.Minute
	for range 4 {
		c, err := cache.New(cache.Config{LockTTL: claimTTL}, newTier(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, c)
	}
	ctx := context.Background()

	k := cache.Key{ID: "img.tif", Name: "full/max/0/default.jpg v1"}
	var computed atomic.Int64
	results := make(chan string, 4*8)
	start := make(chan struct{})
	for _, c := range replicas {
		for range 8 {
			go func() {
				<-start
				h, fill, err := c.Lookup(ctx, k)
				if err != nil {
					results <- "error " + err.Error()
					return
				}
				if fill != nil {
					computed.Add(1)
					time.Sleep(200 * time.Millisecond) // the render
					fill.Write(cachetest.Body(k, 5000))
					fill.Commit(cachetest.Meta(k))
					results <- "computed"
					return
				}
				b, _ := io.ReadAll(h.Body)
				h.Body.Close()
				if !bytes.Equal(b, cachetest.Body(k, 5000)) {
					results <- "wrong body from " + h.Tier
					return
				}
				results <- "hit"
			}()
		}
	}
	close(start)
	for range 32 {
		if r := <-results; r != "hit" && r != "computed" {
			t.Error(r)
		}
	}
	if n := computed.Load(); n != 1 {
		t.Errorf("32 identical misses on 4 replicas computed %d times, want 1", n)
	}
	var remote int64
	for _, c := range replicas {
		remote += c.Stats().Remote
	}
	if remote != 3 {
		t.Errorf("%d lookups answered by another replica's computation, want 3 (one per waiting replica)", remote)
	}

	// The computing replica gives up: the waiting one computes at once.
	k2 := cache.Key{ID: "img.tif", Name: "other v1"}
	_, fill, _ := replicas[0].Lookup(ctx, k2)
	if fill == nil {
		t.Fatal("no fill for a new key")
	}
	got := make(chan *cache.Fill, 1)
	go func() {
		_, f, _ := replicas[1].Lookup(ctx, k2)
		got <- f
	}()
	select {
	case <-got:
		t.Fatal("replica 1 did not wait for replica 0's computation")
	case <-time.After(150 * time.Millisecond):
	}
	fill.Abort()
	select {
	case f := <-got:
		if f == nil {
			t.Fatal("replica 1 got no fill after replica 0 gave up")
		}
		f.Abort()
	case <-time.After(claimTTL / 10):
		t.Fatal("replica 1 still waits after replica 0 gave up")
	}
}
