package service

// SetHeadsBound bounds the bytes s keeps of remote TIFFs besides their
// tiles (tiffHeads): 1 keeps none, so that libvips reads them from the
// store as it decodes.
func SetHeadsBound(s *Service, n int64) { s.heads.max = n }
