package plugin

import (
	"bytes"
	"reflect"
	"testing"
)

func TestFieldsRoundTrip(t *testing.T) {
	tests := []Fields{
		nil,
		{{"id", "photo"}},
		{{"", ""}, {"header:x", "a\x00b\nc"}, {"header:x", "second"}},
		{{"png", string(bytes.Repeat([]byte{0xff, 0}, 1000))}},
	}
	for _, f := range tests {
		b := f.AppendEncode(nil)
		if len(b) != f.Size() {
			t.Errorf("Size %d, encoded %d", f.Size(), len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%q): %v", b, err)
		}
		if len(got) != len(f) || (len(f) > 0 && !reflect.DeepEqual(got, f)) {
			t.Errorf("round trip: got %q, want %q", got, f)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := map[string][]byte{
		"short length":   {1, 0},
		"key too long":   {5, 0, 0, 0, 'a'},
		"missing value":  {1, 0, 0, 0, 'a'},
		"value too long": {1, 0, 0, 0, 'a', 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range tests {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: Decode(%v) succeeded", name, b)
		}
	}
}

func TestFieldsGet(t *testing.T) {
	f := Fields{{"a", "1"}, {"b", "2"}, {"a", "3"}}
	if f.Get("a") != "1" || f.Get("b") != "2" || f.Get("c") != "" || !f.Has("b") || f.Has("c") {
		t.Errorf("Get/Has on %v", f)
	}
}

// FuzzDecode checks that any reply a guest hands back decodes without a
// panic, and that what decodes encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(Fields{{"action", "deny"}, {"status", "401"}}.AppendEncode(nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := Decode(b)
		if err != nil {
			return
		}
		if enc := fs.AppendEncode(nil); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding %q gave %q", b, enc)
		}
	})
}

// TestDecodeAllocs: the payload's copy and the list, whatever the fields.
func TestDecodeAllocs(t *testing.T) {
	b := Fields{{"action", "allow"}, {"max-width", "512"}, {"ttl", "60"}, {"vary", "header:authorization"}}.AppendEncode(nil)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Decode(b); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("Decode made %v allocations, want 2", n)
	}
}
