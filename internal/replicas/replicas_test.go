package replicas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// samplePaths are the requests of the steady load: the info.json and a
// few derivatives of every sample image.
func samplePaths() []string {
	var paths []string
	for _, id := range []string{"julia", "mandelbrot", "testchart", "zoneplate"} {
		paths = append(paths,
			"/iiif/3/"+id+"/info.json",
			"/iiif/3/"+id+"/full/256,/0/default.jpg",
			"/iiif/3/"+id+"/0,0,256,256/128,/0/default.jpg",
			"/iiif/2/"+id+"/full/200,/0/default.png",
		)
	}
	// One large answer (megabytes), the kind a crash can cut off while
	// it is being sent.
	return append(paths, "/iiif/3/mandelbrot/full/max/0/default.png")
}

// TestReplicasBehindHAProxy runs three replicas behind HAProxy under a
// steady bounded load, and checks what clients see when one replica is
// killed, and during a rolling restart.
func TestReplicasBehindHAProxy(t *testing.T) {
	c := newCluster(t)
	rs := []*replica{c.replica("r1"), c.replica("r2"), c.replica("r3")}
	h := startHAProxy(t, rs...)
	paths := samplePaths()
	// Every derivative once, so that the load then asks cached ones.
	for _, p := range paths {
		resp, err := http.Get(h.url() + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("warming %s: %v %v", p, err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLoad(h.url(), paths, 6)
	defer l.end()
	l.waitRequests(ctx, 200)
	if n, _, failed, cut := l.snapshot(); len(failed)+len(cut) > 0 {
		t.Fatalf("before anything happened, %d of %d requests failed: %q %q", len(failed)+len(cut), n, failed, cut)
	}

	// kill -9 of one replica: HAProxy retries requests that got no
	// answer on another replica; only answers already being sent when
	// the process died can fail, and they are counted.
	rs[1].kill()
	h.waitUp(t, "r2", false)
	l.waitRequests(ctx, 300)
	n, ok, failed, cut := l.snapshot()
	t.Logf("kill -9 of r2: %d requests, %d answered, %d failed without an answer, %d cut off while being sent", n, ok, len(failed), len(cut))
	for _, s := range cut {
		t.Logf("  cut off: %s", s)
	}
	if len(failed) > 0 {
		t.Errorf("kill -9: %d requests failed that HAProxy should have retried: %q", len(failed), failed)
	}
	if ok == 0 {
		t.Error("kill -9: no request answered")
	}
	rs[1].start()
	h.waitUp(t, "r2", true)
	l.waitRequests(ctx, 100)
	l.snapshot()

	// A rolling restart, one replica at a time, each with SIGTERM and the
	// drain: no client request fails at all.
	for _, r := range rs {
		if err := r.stop(); err != nil {
			t.Errorf("%s on SIGTERM: %v\n%s", r.name, err, r.logs.String())
		}
		h.waitUp(t, r.name, false)
		l.waitRequests(ctx, 50)
		r.start()
		h.waitUp(t, r.name, true)
		l.waitRequests(ctx, 50)
	}
	n, ok, failed, cut = l.snapshot()
	t.Logf("rolling restart: %d requests, %d answered, %d failed, %d cut off", n, ok, len(failed), len(cut))
	if len(failed)+len(cut) > 0 || ok != n {
		t.Errorf("rolling restart: failed %q, cut off %q", failed, cut)
	}
	if ctx.Err() != nil {
		t.Error("the load stopped making requests")
	}
	l.end()

	// A burst of 100 clients asking one new rendered region through the
	// balancer (so across the three replicas): one computation in all;
	// the other replicas wait for it through the Redis claim
	// (cache.Locker) and the other requests of a replica through its
	// singleflight.
	before := fills(rs)
	const region = "/iiif/3/mandelbrot/123,45,678,543/301,/0/default.png"
	var wg sync.WaitGroup
	start := make(chan struct{})
	bodies := make([][]byte, 100)
	status := make([]int, 100)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Get(h.url() + region)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			status[i] = resp.StatusCode
			bodies[i], _ = io.ReadAll(resp.Body)
		}()
	}
	close(start)
	wg.Wait()
	for i := range bodies {
		if status[i] != http.StatusOK || !bytes.Equal(bodies[i], bodies[0]) || len(bodies[0]) == 0 {
			t.Fatalf("client %d: status %d, %d bytes (client 0: %d bytes)", i, status[i], len(bodies[i]), len(bodies[0]))
		}
	}
	after := fills(rs)
	var computed, remote float64
	for i, r := range rs {
		computed += after[i] - before[i]
		remote += r.metric("iiifd_cache_remote_total")
	}
	t.Logf("100 clients, one new region (%x…): %v computation(s), %v answered by another replica's computation", sha256.Sum256(bodies[0]), computed, remote)
	if computed != 1 {
		t.Errorf("%v computations of one region across the replicas, want 1", computed)
	}
}

func fills(rs []*replica) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.metric("iiifd_cache_fills_total")
	}
	return out
}
