//go:build wasip1

// Command runaway is a misbehaving iiifd plugin for tests: its authorize
// never returns. The host must stop it at the call's time limit.
package main

import "github.com/iiifd/iiifd/sdk/go/iiifdplugin"

var spins int

//go:wasmexport authorize
func authorize(ptr, size uint32) uint64 {
	return iiifdplugin.Authorize(ptr, size, func(iiifdplugin.Fields) iiifdplugin.Decision {
		for {
			spins++
		}
	})
}

func main() {}
