package service

// HeldBytes returns the bytes renders hold fetched ahead, for tests that
// check every render gives its share back.
func HeldBytes() int64 { return heldBytes.Load() }
