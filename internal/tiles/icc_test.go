package tiles

import (
	"bytes"
	"errors"
	"testing"
)

// iccOf reassembles the ICC profile from a JPEG's APP2 segments, checking
// the chunk numbering as a decoder does.
func iccOf(t *testing.T, j []byte) []byte {
	t.Helper()
	var out []byte
	seq := 0
	for i := 2; i+4 <= len(j) && j[i] == 0xFF && j[i+1] == 0xE2; {
		n := int(j[i+2])<<8 | int(j[i+3])
		seg := j[i+4 : i+2+n]
		if !bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) {
			t.Fatalf("APP2 at %d is not ICC_PROFILE", i)
		}
		seq++
		if int(seg[12]) != seq {
			t.Fatalf("chunk %d numbered %d", seq, seg[12])
		}
		out = append(out, seg[14:]...)
		if len(seg[14:]) > iccChunk {
			t.Fatalf("chunk of %d bytes", len(seg[14:]))
		}
		i += 2 + n
	}
	return out
}

func TestEmbedICC(t *testing.T) {
	jpg := []byte{0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 1, 0xFF, 0xD9}
	for _, size := range []int{1, 560, iccChunk, iccChunk + 1, 3*iccChunk + 7} {
		icc := make([]byte, size)
		for i := range icc {
			icc[i] = byte(i * 7)
		}
		got, err := EmbedICC(jpg, icc)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if back := iccOf(t, got); !bytes.Equal(back, icc) {
			t.Errorf("%d bytes: reassembled %d bytes, not the profile", size, len(back))
		}
		if !bytes.HasSuffix(got, jpg[2:]) || !bytes.HasPrefix(got, soi) {
			t.Errorf("%d bytes: coded data changed", size)
		}
	}
	if got, err := EmbedICC(jpg, nil); err != nil || !bytes.Equal(got, jpg) {
		t.Errorf("no profile: % x, %v", got, err)
	}
	if _, err := EmbedICC(jpg, make([]byte, 256*iccChunk)); !errors.Is(err, ErrNoPassthrough) {
		t.Errorf("a profile of 256 chunks: %v, want ErrNoPassthrough", err)
	}
	if _, err := EmbedICC([]byte{1, 2, 3, 4}, []byte{1}); !errors.Is(err, ErrNoPassthrough) {
		t.Errorf("not a JPEG: %v", err)
	}
}
