package httpapi

import "sync/atomic"

var hotAnswered atomic.Int64

func init() {
	onHot = func() { hotAnswered.Add(1) }
}

// HotAnswered is the number of requests answered from remembered entries
// so far, in this test process.
func HotAnswered() int64 { return hotAnswered.Load() }
