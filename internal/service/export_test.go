package service

import "github.com/iiifd/iiifd/internal/source/prefetch"

// SetHeadsBound bounds the bytes s keeps of remote TIFFs besides their
// tiles (prefetch.Heads): 1 keeps none, so that libvips reads them from the
// store as it decodes.
func SetHeadsBound(s *Service, n int64) { s.heads = prefetch.NewHeads(n) }
