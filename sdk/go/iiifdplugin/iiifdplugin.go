//go:build wasip1

// Package iiifdplugin is the Go SDK of iiifd plugins: it owns the memory
// exchange with the host (the iiifd_alloc and configure exports), decodes
// requests and encodes replies, so a plugin is a few functions. Build a
// plugin with the stock toolchain as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o name.wasm .
//
// A plugin exports only the hooks it implements, each in one line that
// hands the call to this package:
//
//	//go:wasmexport authorize
//	func authorize(ptr, size uint32) uint64 { return iiifdplugin.Authorize(ptr, size, check) }
//
// See docs/PLUGINS.md for the ABI and the hooks' fields.
package iiifdplugin

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Fields is a request's payload, read where the host wrote it: only the
// values asked for are copied out, so a hook pays for what it reads, not
// for every header of the request. Fields are valid during the call that
// received them only. See docs/PLUGINS.md for the keys of each hook.
type Fields struct{ b []byte }

// Field is one entry of a reply.
type Field struct{ Key, Value string }

// Get returns the value of the first field named key, or "".
func (f Fields) Get(key string) string {
	v, _ := f.Lookup(key)
	return v
}

// Lookup returns the value of the first field named key and whether
// there is one.
func (f Fields) Lookup(key string) (string, bool) {
	found := false
	var val string
	f.each(func(k, v []byte) bool {
		if string(k) == key {
			val, found = string(v), true
			return false
		}
		return true
	})
	return val, found
}

// All returns the values of every field named key, in order (a header
// sent several times).
func (f Fields) All(key string) []string {
	var out []string
	f.each(func(k, v []byte) bool {
		if string(k) == key {
			out = append(out, string(v))
		}
		return true
	})
	return out
}

// each calls fn with every field until it returns false. A malformed
// tail is ignored.
func (f Fields) each(fn func(k, v []byte) bool) {
	b := f.b
	for len(b) >= 4 {
		n := binary.LittleEndian.Uint32(b)
		if uint64(n)+4 > uint64(len(b)) {
			return
		}
		k := b[4 : 4+n]
		b = b[4+n:]
		if len(b) < 4 {
			return
		}
		n = binary.LittleEndian.Uint32(b)
		if uint64(n)+4 > uint64(len(b)) {
			return
		}
		v := b[4 : 4+n]
		b = b[4+n:]
		if !fn(k, v) {
			return
		}
	}
}

// Int returns the field named key as an integer (0 when absent).
func (f Fields) Int(key string) int {
	n, _ := strconv.Atoi(f.Get(key))
	return n
}

// Header returns the first value of a request header (name in lower
// case, e.g. "authorization").
func (f Fields) Header(name string) string { return f.Get("header:" + name) }

// Cookie returns the value of a request cookie.
func (f Fields) Cookie(name string) string { return f.Get("cookie:" + name) }

// in is the buffer the host writes each request into; out holds the last
// reply until the next call, so the host can read it.
var in, out []byte

//go:wasmexport iiifd_alloc
func alloc(size uint32) uint32 {
	if uint32(cap(in)) < size || cap(in) == 0 {
		in = make([]byte, max(size, 256))
	}
	return ptrOf(in[:cap(in)])
}

// decode returns the request the host wrote into the input buffer. The
// host writes a payload there without calling iiifd_alloc again while it
// fits the size last asked for.
func decode(size uint32) Fields {
	if uint64(size) > uint64(cap(in)) {
		return Fields{}
	}
	return Fields{in[:size]}
}

// reply encodes fields into out and returns its address and length
// packed as the hooks return them.
func reply(f ...Field) uint64 {
	out = out[:0]
	for _, x := range f {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(x.Key)))
		out = append(out, x.Key...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(x.Value)))
		out = append(out, x.Value...)
	}
	if cap(out) == 0 {
		out = make([]byte, 0, 64)
	}
	return uint64(ptrOf(out[:cap(out)]))<<32 | uint64(len(out))
}

var configure func(Fields) error

// Configure registers the function that receives the plugin's
// configuration (the NAME.KEY=VALUE settings, keys without the name)
// when an instance starts. An error refuses the configuration: the
// plugin is not loaded.
func Configure(f func(config Fields) error) { configure = f }

var overlayVary []string

// OverlayVary declares the client fields ("client", "header:NAME",
// "cookie:NAME") that the plugin's overlay depends on, for overlays that
// differ by user or institution. The host gives the overlay only these
// besides the request's own fields, keeps its output apart for each value
// of them, and sends it to no other client: Vary names the headers, and a
// dependence on cookies, Authorization or the client's address makes the
// response private and keeps it out of the derivative cache. Call it in
// init or in the function given to Configure.
func OverlayVary(keys ...string) { overlayVary = keys }

//go:wasmexport configure
func configureExport(_, size uint32) uint64 {
	if configure != nil {
		if err := configure(decode(size)); err != nil {
			return reply(Field{"error", err.Error()})
		}
	}
	if len(overlayVary) > 0 {
		return reply(Field{"overlay-vary", strings.Join(overlayVary, ",")})
	}
	return reply()
}

// Resolve answers a resolve call with f, which maps an identifier to the
// key of its image under the root; found false makes it unknown (404),
// and an empty key with found true leaves it to the next plugin.
func Resolve(_, size uint32, f func(id string) (key string, found bool)) uint64 {
	key, found := f(decode(size).Get("id"))
	switch {
	case !found:
		return reply(Field{"notfound", "1"})
	case key == "":
		return reply()
	}
	return reply(Field{"key", key})
}

// Decision is authorize's answer; build it with Allow, AllowMax, Deny or
// Redirect.
type Decision struct{ fields []Field }

// Allow grants full access.
func Allow() Decision { return Decision{[]Field{{"action", "allow"}}} }

// AllowMax grants access to images of at most width × height pixels (0 =
// not limited); larger requests are served as if the server's maximum
// size were that.
func AllowMax(width, height int) Decision {
	return Decision{[]Field{{"action", "allow"}, {"max-width", strconv.Itoa(width)}, {"max-height", strconv.Itoa(height)}}}
}

// Deny refuses with status 401 or 403 and a message for the client; a
// 401 may carry a WWW-Authenticate challenge.
func Deny(status int, message, challenge string) Decision {
	return Decision{[]Field{{"action", "deny"}, {"status", strconv.Itoa(status)}, {"message", message}, {"challenge", challenge}}}
}

// Redirect sends the client to location (status 302 unless 301, 303,
// 307 or 308 is given).
func Redirect(status int, location string) Decision {
	return Decision{[]Field{{"action", "redirect"}, {"status", strconv.Itoa(status)}, {"location", location}}}
}

// Cache lets the host reuse the decision for ttl seconds for every
// request whose fields named in vary (e.g. "header:authorization") are
// the same, without calling the plugin: for decisions that depend on
// nothing else.
func (d Decision) Cache(ttl int, vary ...string) Decision {
	d.fields = append(d.fields[:len(d.fields):len(d.fields)], Field{"ttl", strconv.Itoa(ttl)}, Field{"vary", strings.Join(vary, ",")})
	return d
}

// Authorize answers an authorize call with f.
func Authorize(_, size uint32, f func(req Fields) Decision) uint64 {
	return reply(f(decode(size)).fields...)
}

// Info answers an info call with f, which returns a JSON object of fields
// to add to info.json (rights, service, partOf, seeAlso), or nil.
func Info(_, size uint32, f func(req Fields) []byte) uint64 {
	js := f(decode(size))
	if js == nil {
		return reply()
	}
	return reply(Field{"json", string(js)})
}

// Image is an overlay: PNG bytes placed with their top-left corner at X, Y
// of the output, with an opacity of 0..1.
type Image struct {
	PNG     []byte
	X, Y    int
	Opacity float64
}

// Overlay answers an overlay call with f, which is given the request and
// the output's size (fields "width" and "height") and returns an image
// or nil.
func Overlay(_, size uint32, f func(req Fields) *Image) uint64 {
	img := f(decode(size))
	if img == nil {
		return reply()
	}
	return reply(Field{"png", string(img.PNG)}, Field{"x", strconv.Itoa(img.X)}, Field{"y", strconv.Itoa(img.Y)},
		Field{"opacity", strconv.FormatFloat(img.Opacity, 'f', -1, 64)})
}
