package plugin

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Field is one entry of a payload: a key and a value, both byte strings.
// Keys may repeat (a header sent twice).
type Field struct {
	Key, Value string
}

// Fields is a payload exchanged with a guest: the encoding is, for each
// field in order, the key's length as a little-endian uint32, the key, the
// value's length as a little-endian uint32 and the value. Nothing is
// escaped and nothing needs parsing beyond lengths, so a guest in any
// language decodes it in a few lines and in microseconds (see
// docs/PLUGINS.md).
type Fields []Field

// maxPayload bounds what a guest may hand back, and so what the host
// copies out of its memory.
const maxPayload = 16 << 20

// errMalformed is the cause of every decoding failure.
var errMalformed = errors.New("plugin: malformed payload")

// Append adds a field.
func (f *Fields) Append(key, value string) { *f = append(*f, Field{key, value}) }

// Get returns the value of the first field named key, or "".
func (f Fields) Get(key string) string {
	for _, x := range f {
		if x.Key == key {
			return x.Value
		}
	}
	return ""
}

// Has reports whether a field named key is present.
func (f Fields) Has(key string) bool {
	for _, x := range f {
		if x.Key == key {
			return true
		}
	}
	return false
}

// Size is the length of the encoding of f.
func (f Fields) Size() int {
	n := 0
	for _, x := range f {
		n += 8 + len(x.Key) + len(x.Value)
	}
	return n
}

// AppendEncode appends the encoding of f to b.
func (f Fields) AppendEncode(b []byte) []byte {
	for _, x := range f {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Key)))
		b = append(b, x.Key...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

// Decode parses a payload. It never panics and never allocates more than
// the payload's length in strings, whatever the input: the payload is
// copied once, the keys and values are parts of that copy, and the list
// is made at its final length (two allocations whatever the fields).
func Decode(b []byte) (Fields, error) {
	if len(b) > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", errMalformed, len(b), maxPayload)
	}
	// Count first, so that the list is allocated once.
	n := 0
	for off := 0; off < len(b); n++ {
		var err error
		if _, off, err = cut(b, off); err == nil {
			_, off, err = cut(b, off)
		}
		if err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, nil
	}
	s := string(b)
	f := make(Fields, 0, n)
	for off := 0; off < len(s); {
		// Checked above.
		k, kend, _ := cut(b, off)
		v, vend, _ := cut(b, kend)
		f = append(f, Field{s[k:kend], s[v:vend]})
		off = vend
	}
	return f, nil
}

// cut checks the length-prefixed part of b at off and returns where it
// starts and ends, its end being where the rest of b starts.
func cut(b []byte, off int) (start, end int, err error) {
	b = b[off:]
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("%w: truncated length", errMalformed)
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return 0, 0, fmt.Errorf("%w: a field of %d bytes in %d remaining", errMalformed, n, len(b)-4)
	}
	start = off + 4
	return start, start + int(n), nil
}
