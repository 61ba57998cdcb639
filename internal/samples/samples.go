// Package samples embeds the sample images that `iiifd serve` shows when
// no --root is given: a pyramidal TIFF, a JPEG, a PNG with alpha and a
// JPEG 2000, so a new user sees every kind of source at once.
package samples

//go:generate go run gen.go

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed images
var images embed.FS

// FS returns the sample images (file names at the top level).
func FS() fs.FS {
	sub, err := fs.Sub(images, "images")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Extract writes the sample images into dir, because libvips reads files.
func Extract(dir string) error {
	return fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS(), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
