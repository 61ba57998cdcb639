//go:build wasip1

// Command hash-resolver is an iiifd plugin for the hash-prefix key
// layout: the image of identifier ID is stored as AA/BB/ID, where AABB...
// is the hex SHA-256 of ID. The number of prefix folders is
// hash-resolver.depth (default 2, at most 8).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var depth = 2

func init() {
	iiifdplugin.Configure(func(cfg iiifdplugin.Fields) error {
		if cfg.Get("depth") != "" {
			depth = cfg.Int("depth")
		}
		if depth < 1 || depth > 8 {
			return fmt.Errorf("depth %q is not in 1..8", cfg.Get("depth"))
		}
		return nil
	})
}

//go:wasmexport resolve
func resolve(ptr, size uint32) uint64 { return iiifdplugin.Resolve(ptr, size, key) }

// key returns the stored key of an identifier.
func key(id string) (string, bool) {
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:])
	var b strings.Builder
	for i := range depth {
		b.WriteString(h[2*i : 2*i+2])
		b.WriteByte('/')
	}
	b.WriteString(id)
	return b.String(), true
}

func main() {}
