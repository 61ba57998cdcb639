//go:build wasip1

// Command memhog is a misbehaving iiifd plugin for tests: its authorize
// allocates memory without end. The host must stop it at the instance's
// memory limit.
package main

import "github.com/iiifd/iiifd/sdk/go/iiifdplugin"

var hoard [][]byte

//go:wasmexport authorize
func authorize(ptr, size uint32) uint64 {
	return iiifdplugin.Authorize(ptr, size, func(iiifdplugin.Fields) iiifdplugin.Decision {
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	})
}

func main() {}
