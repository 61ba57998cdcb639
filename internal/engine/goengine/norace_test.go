//go:build !race

package goengine_test

// raceEnabled: see race_test.go.
const raceEnabled = false
