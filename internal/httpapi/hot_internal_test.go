package httpapi

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestHotBound: however many lines are remembered, concurrently or not,
// the memo keeps at most its bound, and its count stays exact.
func TestHotBound(t *testing.T) {
	hr := newHotRequests(time.Second, 100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				hr.put(fmt.Sprintf("/iiif/3/a/%d/%d", g, i%300), &hotEntry{})
			}
		}()
	}
	wg.Wait()
	n := 0
	hr.m.Range(func(any, any) bool { n++; return true })
	if n > 100 || int64(n) != hr.n.Load() {
		t.Errorf("%d entries held, counted %d, bound 100", n, hr.n.Load())
	}
	hr.forget()
	if hr.n.Load() != 0 {
		t.Errorf("after forget: counted %d", hr.n.Load())
	}
	e := &hotEntry{}
	hr.put("/x", e)
	hr.drop("/x", &hotEntry{}) // another entry: kept
	if _, ok := hr.m.Load("/x"); !ok {
		t.Error("drop removed an entry it was not given")
	}
	hr.drop("/x", e)
	if _, ok := hr.m.Load("/x"); ok || hr.n.Load() != 0 {
		t.Errorf("drop: still held %v, counted %d", ok, hr.n.Load())
	}
}
