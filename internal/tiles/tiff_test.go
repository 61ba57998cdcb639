package tiles

import (
	"bytes"
	"errors"
	"testing"
)

func TestSpliceJPEG(t *testing.T) {
	tables := []byte{0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xD9}
	tile := []byte{0xFF, 0xD8, 0xFF, 0xC0, 3, 4, 0xFF, 0xD9}
	got, err := SpliceJPEG(tables, tile, false)
	if want := []byte{0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xC0, 3, 4, 0xFF, 0xD9}; err != nil || !bytes.Equal(got, want) {
		t.Errorf("splice = % x, %v; want % x", got, err, want)
	}
	got, _ = SpliceJPEG(nil, tile, true)
	if !bytes.HasPrefix(got, append([]byte{0xFF, 0xD8}, adobeRGB...)) || !bytes.HasSuffix(got, tile[2:]) {
		t.Errorf("RGB splice = % x", got)
	}
	for _, bad := range [][2][]byte{
		{tables, []byte{0xFF, 0xD8}},
		{tables, []byte{0, 0, 0xFF, 0xD9}},
		{[]byte{0xFF, 0xD8, 0xFF, 0xDB}, tile},
		{[]byte{0xFF, 0xD9}, tile},
	} {
		if _, err := SpliceJPEG(bad[0], bad[1], false); !errors.Is(err, ErrNoPassthrough) {
			t.Errorf("splice(% x, % x): %v", bad[0], bad[1], err)
		}
	}
}
