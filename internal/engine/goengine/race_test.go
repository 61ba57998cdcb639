//go:build race

package goengine_test

// raceEnabled says the race detector is on: it makes the engine's pixel
// loops some ten times slower, and the engine runs a render on one
// goroutine, so the long parity and memory tests then run a sample of
// their cases (scripts/bench-goengine and a plain go test run them all).
const raceEnabled = true
