//go:build wasip1

package iiifdplugin

import "unsafe"

// ptrOf returns the address of b's first byte in linear memory. Go's
// garbage collector does not move objects, and b stays referenced from
// a package variable until the next call.
func ptrOf(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }
