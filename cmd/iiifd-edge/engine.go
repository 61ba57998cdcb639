//go:build js && wasm

package main

import (
	"github.com/iiifd/iiifd/internal/edge"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
)

// newEngine is the pure-Go engine, bounded as the host's flat sources
// are (the host refuses larger ones first, with the native message).
func newEngine(opt engine.EncodeOptions, maxSourcePixels int64) edge.Engine {
	return goengine.New(opt, goengine.Limits{MaxSourcePixels: maxSourcePixels})
}
