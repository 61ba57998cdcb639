package probe

import (
	"bytes"
	"testing"
)

// FuzzRead checks, for any input, that Read does not panic, classifies its
// errors, keeps its read budget, returns sound levels, and depends on no
// byte past the ones it needed. The lazy TIFF accessors must not panic on
// what Read returned either. Seeds are all the samples; crashers found are
// kept in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	for _, s := range samples(f) {
		// Go's fuzzer spends its whole minimizing time (a minute) on each
		// new input grown from a seed of tens of KiB; small seeds cover
		// the same code.
		if len(s.data) <= 8<<10 {
			f.Add(s.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, src, err := readChecked(t, data)
		if err != nil {
			return
		}
		again, _, err := readChecked(t, data[:src.needEnd])
		if err != nil || summary(again) != summary(info) {
			t.Fatalf("cut to the %d bytes needed: %v, %s; whole: %s", src.needEnd, err, summary(again), summary(info))
		}
		r := bytes.NewReader(data)
		for _, l := range info.Levels {
			if l.TIFF == nil {
				continue
			}
			l.TIFF.Grid()
			l.TIFF.JPEGTables(r)
			if icc, err := l.TIFF.ICCProfile(r); err == nil && len(icc) > MaxICCProfile {
				t.Fatalf("ICC profile of %d bytes", len(icc))
			}
			n := l.TIFF.Chunks()
			l.TIFF.TileRanges(r, 0, min(n, 16))
			l.TIFF.TileRange(r, n-1)
			l.TIFF.TileRange(r, n)
		}
	})
}
