package httpapi

import (
	"net"
	"sync/atomic"
)

var hotAnswered, connAnswered atomic.Int64

func init() {
	onHot = func() { hotAnswered.Add(1) }
	onConn = func() { connAnswered.Add(1) }
}

// HotAnswered is the number of requests answered from remembered entries
// so far, in this test process, on the connection or not.
func HotAnswered() int64 { return hotAnswered.Load() }

// ConnAnswered is the number of those answered on the connection, before
// net/http read them.
func ConnAnswered() int64 { return connAnswered.Load() }

// Writing is the number of answers being written on connections of ln
// (a listener Listener returned).
func Writing(ln net.Listener) int64 {
	if l, ok := ln.(*hotListener); ok {
		return l.writing.Load()
	}
	return 0
}
