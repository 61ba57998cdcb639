package httpapi

// HotAnswered is the number of requests answered from remembered entries
// so far, in this process.
func HotAnswered() int64 { return hotAnswered.Load() }
