package limit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustNew(t *testing.T, c Config) *Admitter {
	t.Helper()
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWorkersBound(t *testing.T) {
	a := mustNew(t, Config{Workers: 2, Queue: 10})
	ctx := context.Background()
	r1, _ := a.Acquire(ctx, 0)
	r2, _ := a.Acquire(ctx, 0)
	got := make(chan func(), 1)
	go func() {
		r, err := a.Acquire(ctx, 0)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("a third worker started while two run")
	case <-time.After(50 * time.Millisecond):
	}
	if s := a.Stats(); s.Running != 2 || s.Waiting != 1 {
		t.Errorf("stats %+v", s)
	}
	r1()
	r3 := <-got
	r2()
	r3()
	r3() // a second release is a no-op
	if s := a.Stats(); s.Running != 0 || s.Waiting != 0 {
		t.Errorf("after release: %+v", s)
	}
}

func TestQueueFullRefusesAtOnce(t *testing.T) {
	a := mustNew(t, Config{Workers: 1, Queue: 1})
	ctx := context.Background()
	r, _ := a.Acquire(ctx, 0)
	defer r()
	go a.Acquire(ctx, 0) // takes the only queue place
	waitFor(t, func() bool { return a.Stats().Waiting == 1 })
	start := time.Now()
	_, err := a.Acquire(ctx, 0)
	if !errors.Is(err, ErrQueueFull) || time.Since(start) > 100*time.Millisecond {
		t.Errorf("got %v after %v, want ErrQueueFull at once", err, time.Since(start))
	}
	if st := ErrQueueFull.HTTPStatus(); st != 503 {
		t.Errorf("status %d", st)
	}
}

func TestQueueTimeout(t *testing.T) {
	a := mustNew(t, Config{Workers: 1, Queue: 5, QueueTimeout: 30 * time.Millisecond})
	r, _ := a.Acquire(context.Background(), 0)
	defer r()
	if _, err := a.Acquire(context.Background(), 0); !errors.Is(err, ErrQueueTimeout) {
		t.Errorf("got %v, want ErrQueueTimeout", err)
	}
	if s := a.Stats(); s.Waiting != 0 {
		t.Errorf("a timed-out waiter stayed queued: %+v", s)
	}
}

func TestContextEnds(t *testing.T) {
	a := mustNew(t, Config{Workers: 1})
	r, _ := a.Acquire(context.Background(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := a.Acquire(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	r()
	if _, err := a.Acquire(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("an ended context was admitted: %v", err)
	}
}

func TestMemoryBudget(t *testing.T) {
	a := mustNew(t, Config{Memory: 100})
	ctx := context.Background()
	r60, _ := a.Acquire(ctx, 60)
	done := make(chan struct{})
	go func() {
		r, _ := a.Acquire(ctx, 50) // 60+50 > 100: waits
		close(done)
		r()
	}()
	select {
	case <-done:
		t.Fatal("admitted over the budget")
	case <-time.After(50 * time.Millisecond):
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	r30, err := a.Acquire(short, 30)
	if err == nil {
		// Strict arrival order: the cheap request must not overtake.
		t.Error("a later cheap request overtook a waiting one")
		r30()
	}
	r60()
	<-done
	// A unit larger than the whole budget runs, alone.
	big, err := a.Acquire(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	big()
}

func TestFIFO(t *testing.T) {
	a := mustNew(t, Config{Workers: 1, Queue: 100})
	ctx := context.Background()
	r, _ := a.Acquire(ctx, 0)
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rel, err := a.Acquire(ctx, 0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			rel()
		}(i)
		waitFor(t, func() bool { return a.Stats().Waiting == i+1 })
	}
	r()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("order %v, want arrival order", order)
		}
	}
}

// TestStress hammers the admitter from many goroutines, some cancelling,
// and checks the bounds are never exceeded and everything is released.
func TestStress(t *testing.T) {
	a := mustNew(t, Config{Workers: 3, Queue: 20, QueueTimeout: 20 * time.Millisecond, Memory: 1000})
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*time.Millisecond)
				rel, err := a.Acquire(ctx, int64(100+g*7%300))
				if err == nil {
					n := running.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					if s := a.Stats(); s.Memory > 1000 {
						t.Errorf("memory %d over budget", s.Memory)
					}
					time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
					running.Add(-1)
					rel()
				}
				cancel()
			}
		}(g)
	}
	wg.Wait()
	if peak.Load() > 3 {
		t.Errorf("peak %d workers, bound 3", peak.Load())
	}
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("leftover state %+v", s)
	}
}

func TestValidate(t *testing.T) {
	if _, err := New(Config{Workers: -1}); err == nil {
		t.Error("negative workers accepted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPerClientShare: a client over its share gets ErrClientShare (429)
// at once while others still get in; its share comes back as its work
// ends, whether admitted, refused or abandoned.
func TestPerClientShare(t *testing.T) {
	a := mustNew(t, Config{Workers: 1, Queue: 10, PerClient: 2})
	greedy := WithClient(context.Background(), "192.0.2.1")
	other := WithClient(context.Background(), "192.0.2.2")
	r1, err := a.Acquire(greedy, 0)
	if err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithCancel(greedy)
	errc := make(chan error, 1)
	go func() {
		r, err := a.Acquire(waiting, 0)
		if r != nil {
			r()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return a.Stats().Waiting == 1 })
	if _, err := a.Acquire(greedy, 0); !errors.Is(err, ErrClientShare) || ErrClientShare.HTTPStatus() != 429 {
		t.Fatalf("third request of one client: %v, want ErrClientShare (429)", err)
	}
	if !Refused(ErrClientShare) || !Refused(ErrQueueFull) || Refused(errors.New("x")) {
		t.Error("Refused misclassifies")
	}
	// Another client still queues.
	go func() {
		r, err := a.Acquire(other, 0)
		if err == nil {
			r()
		}
	}()
	waitFor(t, func() bool { return a.Stats().Waiting == 2 })
	// Abandoning a wait gives the share back.
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned wait: %v", err)
	}
	r1()
	waitFor(t, func() bool { s := a.Stats(); return s.Running == 0 && s.Waiting == 0 })
	r3, err := a.Acquire(greedy, 0)
	if err != nil {
		t.Fatalf("after its work ended, the client is refused: %v", err)
	}
	r3()
	a.mu.Lock()
	n := len(a.clients)
	a.mu.Unlock()
	if n != 0 {
		t.Errorf("%d clients still counted after all work ended", n)
	}
	// Work without a client is not counted.
	r4, err := a.Acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	n = len(a.clients)
	a.mu.Unlock()
	r4()
	if n != 0 {
		t.Errorf("work without a client counted for %d clients", n)
	}
}

// TestReserveRefusesAtOnce: places reserved for work still preparing
// (not waiting yet) count against the queue and the client's share, so
// that work that would be refused is refused before it prepares; the
// room of free worker slots counts too.
func TestReserveRefusesAtOnce(t *testing.T) {
	a := mustNew(t, Config{Workers: 1, Queue: 2, PerClient: 2})
	ctx := context.Background()
	greedy := WithClient(ctx, "192.0.2.1")
	var places []*Place
	for range 2 {
		p, err := a.Reserve(greedy)
		if err != nil {
			t.Fatal(err)
		}
		places = append(places, p)
	}
	if _, err := a.Reserve(greedy); !errors.Is(err, ErrClientShare) {
		t.Fatalf("a third place of one client: %v, want ErrClientShare", err)
	}
	p, err := a.Reserve(ctx) // the free worker's room and two queue places
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, p)
	if _, err := a.Reserve(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a fourth place with one worker and two queue places: %v, want ErrQueueFull", err)
	}
	if s := a.Stats(); s.Reserved != 3 || s.Waiting != 0 || s.Running != 0 {
		t.Errorf("stats %+v", s)
	}
	// The first admitted takes the worker; the others wait as before.
	if err := places[0].Wait(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("with the worker busy and two places reserved: %v, want ErrQueueFull", err)
	}
	places[2].Release()
	p, err = a.Reserve(ctx)
	if err != nil {
		t.Fatalf("a released place was not given back: %v", err)
	}
	p.Release()
	for _, p := range places {
		p.Release()
		p.Release() // a second release is a no-op
	}
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("leftover state %+v", s)
	}
	a.mu.Lock()
	n := len(a.clients)
	a.mu.Unlock()
	if n != 0 {
		t.Errorf("%d clients still counted after every place was released", n)
	}
}

// TestHold: bytes held before admission fit in a share of the memory
// budget, leave less room to running work, count in the work's cost
// once admitted, and come back on Release.
func TestHold(t *testing.T) {
	a := mustNew(t, Config{Memory: 400})
	ctx := context.Background()
	p, _ := a.Reserve(ctx)
	if !p.Hold(60) || !p.Hold(40) || p.Hold(1) {
		t.Fatal("held bytes not bounded by a quarter of the budget")
	}
	if q, _ := a.Reserve(ctx); q.Hold(1) {
		t.Error("a second place held past the share")
	} else {
		q.Release()
	}
	r, err := a.Acquire(ctx, 250) // nothing runs: admitted
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := a.Acquire(short, 60); err == nil {
		t.Error("admitted over the budget: 250 running, 100 held, 60 more")
	}
	r()
	if err := p.Wait(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Memory != 110 || s.Held != 0 || s.Reserved != 0 || s.Running != 1 {
		t.Errorf("admitted with 100 held and a cost of 10: %+v", s)
	}
	if p.Hold(1) {
		t.Error("an admitted place held more")
	}
	p.Release()
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("leftover state %+v", s)
	}
	var none *Place // no admitter: no bound
	if !none.Hold(1<<40) || none.Wait(ctx, 1) != nil {
		t.Error("a nil place bounds")
	}
	none.Release()
}

// TestHeldBound: Config.Held replaces the quarter of the memory budget,
// and bounds held bytes without a memory budget too.
func TestHeldBound(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  Config
		fits int64 // the most bytes held together
	}{
		{Config{Memory: 400}, 100},
		{Config{Memory: 400, Held: 300}, 300},
		{Config{Memory: 400, Held: 20}, 20},
		{Config{Held: 50}, 50},
	} {
		a := mustNew(t, tc.cfg)
		p, _ := a.Reserve(ctx)
		q, _ := a.Reserve(ctx)
		if !p.Hold(tc.fits-1) || !q.Hold(1) || q.Hold(1) || p.Hold(1) {
			t.Errorf("%+v: held bytes not bounded at %d: %+v", tc.cfg, tc.fits, a.Stats())
		}
		p.Release()
		q.Release()
		if s := a.Stats(); s != (Stats{}) {
			t.Errorf("%+v: leftover state %+v", tc.cfg, s)
		}
	}
}

// TestKeep: bytes kept past Release still count as held, against the
// bound of held bytes and the memory budget, while the place's worker
// slot is free for others; they come back when given back, and the
// work waiting for them is admitted.
func TestKeep(t *testing.T) {
	ctx := context.Background()
	a := mustNew(t, Config{Workers: 2, Memory: 400})
	p, _ := a.Reserve(ctx)
	if !p.Hold(80) {
		t.Fatal("80 bytes did not fit")
	}
	giveBack := p.Keep()
	if err := p.Wait(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Memory != 90 || s.Held != 0 || s.Running != 1 {
		t.Errorf("admitted with 80 kept: %+v", s)
	}
	p.Release()
	if s := a.Stats(); s != (Stats{Held: 80}) {
		t.Errorf("released with 80 kept: %+v, want only the 80 held", s)
	}
	q, _ := a.Reserve(ctx)
	if q.Hold(21) || !q.Hold(20) {
		t.Errorf("kept bytes do not count against the bound of held bytes: %+v", a.Stats())
	}
	r, err := a.Acquire(ctx, 250)
	if err != nil {
		t.Fatal(err)
	}
	defer r()
	// 250 running and 100 held: 60 more wait for the kept bytes.
	admitted := make(chan error, 1)
	go func() { admitted <- q.Wait(ctx, 60) }()
	waitFor(t, func() bool { return a.Stats().Waiting == 1 })
	select {
	case err := <-admitted:
		t.Fatalf("admitted over the budget with 80 bytes kept (%v)", err)
	case <-time.After(30 * time.Millisecond):
	}
	giveBack()
	giveBack() // a second call is a no-op
	if err := <-admitted; err != nil {
		t.Fatalf("not admitted once the kept bytes were given back: %v", err)
	}
	q.Release()
	r()
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("leftover state %+v", s)
	}

	// Given back before Release: Release gives everything back.
	p, _ = a.Reserve(ctx)
	p.Hold(50)
	p.Keep()()
	p.Release()
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("given back before Release: leftover state %+v", s)
	}
	// Kept while reserved, released without admission.
	p, _ = a.Reserve(ctx)
	p.Hold(50)
	giveBack = p.Keep()
	p.Release()
	if s := a.Stats(); s != (Stats{Held: 50}) {
		t.Errorf("kept, released unadmitted: %+v, want 50 held", s)
	}
	giveBack()
	if s := a.Stats(); s != (Stats{}) {
		t.Errorf("leftover state %+v", s)
	}
	var none *Place
	none.Keep()()
}

// TestOutput: finished output held for clients is bounded by its share
// of the budget, leaves less room to running work, and makes room when
// given back.
func TestOutput(t *testing.T) {
	a := mustNew(t, Config{Memory: 400})
	if !a.TakeOutput(60) || !a.TakeOutput(40) {
		t.Fatal("output within its share refused")
	}
	if a.TakeOutput(1) {
		t.Error("output past its share (a quarter of the budget) taken")
	}
	if s := a.Stats(); s.Output != 100 {
		t.Errorf("Stats.Output = %d, want 100", s.Output)
	}
	ctx := context.Background()
	r1, err := a.Acquire(ctx, 250) // 100 + 250 fit
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admitted := make(chan error, 1)
	go func() { admitted <- p.Wait(ctx, 100) }() // 100 + 250 + 100 > 400: waits
	for a.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	a.GiveOutput(60) // 40 + 250 + 100 fit: the waiter is admitted
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	if w := a.Waited(); w != 1 {
		t.Errorf("Waited = %d, want 1", w)
	}
	p.Release()
	r1()
	a.GiveOutput(40)
	if s := a.Stats(); s.Output != 0 || s.Memory != 0 || s.Running != 0 {
		t.Errorf("Stats = %+v after everything was given back", s)
	}
	var none *Admitter
	if !none.TakeOutput(1 << 40) {
		t.Error("no admitter refused output")
	}
	none.GiveOutput(1 << 40)
}
