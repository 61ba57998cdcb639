package publish

import (
	"embed"
	iofs "io/fs"
)

// engineFS holds the browser engine when `make publish-assets` has built
// it into engine/ before this package was compiled (see engine/README.md).
// The wasm module is a build product of this repository's own code, so it
// is embedded rather than committed: it is always the engine of the same
// commit, and builds without it (go build ./...) still work.
//
//go:embed engine
var engineFS embed.FS

// Engine returns the embedded browser engine, or nil when this build
// does not hold it.
func Engine() iofs.FS {
	sub, err := iofs.Sub(engineFS, "engine")
	if err != nil {
		return nil
	}
	for _, f := range EngineFiles {
		if _, err := iofs.Stat(sub, f); err != nil {
			return nil
		}
	}
	return sub
}
