package probe

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// readChecked runs read on data and checks what must hold for any input:
// no panic (the test would crash), a classified error or a sound Info, and
// the read budget kept.
func readChecked(t testing.TB, data []byte) (Info, *source, error) {
	t.Helper()
	info, src, err := read(&countingReader{b: data}, int64(len(data)))
	if src.read > readBudget+maxRead {
		t.Fatalf("read %d bytes, budget %d", src.read, readBudget)
	}
	if err != nil {
		var fe *FormatError
		switch {
		case errors.Is(err, ErrUnknownFormat):
		case errors.As(err, &fe):
			if fe.Format == "" || fe.Format != info.Format {
				t.Fatalf("FormatError %q for info.Format %q: %v", fe.Format, info.Format, err)
			}
		default:
			t.Fatalf("unclassified error: %v", err)
		}
		return info, src, err
	}
	checkInvariants(t, info)
	return info, src, nil
}

// TestTruncated cuts every sample at every length. A header that is cut
// short must give an error; once every byte Read needed is there, the
// result must be the same as for the whole file: Read never depends on
// bytes it did not look at.
func TestTruncated(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			whole, src, err := readChecked(t, s.data)
			if err != nil {
				t.Fatal(err)
			}
			want := summary(whole)
			need := int(src.needEnd)
			step := 1
			if len(s.data) > 1<<16 {
				step = 97 // big files: every byte up to what is needed, a sample after
			}
			for n := 0; n < len(s.data); n++ {
				if n > need && n%step != 0 {
					continue
				}
				info, _, err := readChecked(t, s.data[:n])
				switch {
				case n < need && err == nil:
					t.Fatalf("cut at %d of %d (needs %d): no error, got %s", n, len(s.data), need, summary(info))
				case n >= need && err != nil:
					t.Fatalf("cut at %d of %d (needs %d): %v", n, len(s.data), need, err)
				case n >= need && summary(info) != want:
					t.Fatalf("cut at %d: got %s, want %s", n, summary(info), want)
				case n < need && n >= 16 && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownFormat):
					t.Fatalf("cut at %d: %v is not ErrMalformed", n, err)
				}
			}
		})
	}
}

func TestRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sigs := []string{"", "\xff\xd8\xff", "\x89PNG\r\n\x1a\n", "GIF89a", "RIFF\x00\x00\x00\x00WEBP", "II*\x00", "MM\x00*",
		"II+\x00\x08\x00\x00\x00", "MM\x00+\x00\x08\x00\x00", "\x00\x00\x00\x0cjP  \r\n\x87\n", "\xff\x4f\xff\x51", "\x00\x00\x00\x10ftypavif"}
	for range 20000 {
		sig := sigs[rng.IntN(len(sigs))]
		b := make([]byte, len(sig)+rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
			if rng.IntN(4) == 0 {
				b[i] = 0 // small numbers make offsets and counts that point somewhere
			}
		}
		copy(b, sig)
		readChecked(t, b)
	}
}

// TestMutated flips bytes of every sample at random positions.
func TestMutated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range samples(t) {
		if len(s.data) > 1<<16 {
			continue
		}
		for range 300 {
			b := bytes.Clone(s.data)
			for range 1 + rng.IntN(4) {
				i := rng.IntN(min(len(b), 4096)) // headers live near the start (and in IFDs)
				if rng.IntN(2) == 0 {
					i = rng.IntN(len(b))
				}
				b[i] = []byte{0, 1, 0xff, byte(rng.Uint32())}[rng.IntN(4)]
			}
			readChecked(t, b)
		}
	}
}

// TestHostileTIFF builds TIFFs whose structure is broken in ways a fuzzer
// finds only by luck: cycles, huge counts, offsets past the end.
func TestHostileTIFF(t *testing.T) {
	put32 := func(b []byte, at int64, v uint32) []byte { b = bytes.Clone(b); le.PutUint32(b[at:], v); return b }
	put16 := func(b []byte, at int64, v uint16) []byte { b = bytes.Clone(b); le.PutUint16(b[at:], v); return b }
	pages, ifds, nexts := writeTIFFChain(le, false, pyramid(100, 75, 16, 3, 1)...)
	document, _, docNexts := writeTIFFChain(le, false, tiffImage{w: 64, h: 64, tw: 16, th: 16}, tiffImage{w: 64, h: 64, tw: 16, th: 16})
	withSubs, subIFDs, _ := writeTIFFChain(le, false, tiffImage{w: 100, h: 75, tw: 16, th: 16, subs: []tiffImage{{w: 50, h: 37, tw: 16, th: 16}}})
	entry := func(ifd int64, i int) int64 { return ifd + 2 + 12*int64(i) }
	// subIFDs entry: the last in the first IFD, with one inline value.
	subEntry := entry(subIFDs[0], int(le.Uint16(withSubs[subIFDs[0]:]))-1)
	bigPages, bigIFDs, _ := writeTIFFChain(le, true, pyramid(100, 75, 16, 3, 1)...)

	tests := []struct {
		name string
		data []byte
		ok   bool // Read must succeed
	}{
		{"chain points back to IFD 0", put32(pages, nexts[2], uint32(ifds[0])), false},
		{"IFD points to itself", put32(pages, nexts[1], uint32(ifds[1])), false},
		{"sub-IFD is IFD 0", put32(withSubs, subEntry+8, uint32(subIFDs[0])), false},
		{"next IFD past the end", put32(pages, nexts[0], 1<<31), false},
		{"next IFD inside the header", put32(pages, nexts[0], 4), false},
		{"first IFD past the end", put32(pages, 4, 0xffffffff), false},
		{"zero entries", put16(pages, ifds[0], 0), false},
		{"65535 entries", put16(pages, ifds[0], 0xffff), false},
		{"bigtiff 2^40 entries", func() []byte {
			b := bytes.Clone(bigPages)
			le.PutUint64(b[bigIFDs[0]:], 1<<40)
			return b
		}(), false},
		{"sub-IFD count 2^31", put32(withSubs, subEntry+4, 1<<31), false},
		{"tile offsets count 2^32-1", put32(pages, entry(ifds[0], 9)+4, 0xffffffff), false},
		{"width 0", put32(pages, entry(ifds[0], 0)+8, 0), false},
		{"unknown entry type", put16(pages, entry(ifds[0], 0)+2, 99), false},
		// A multi-page document: the walk stops at the first page as large
		// as IFD 0, so a broken pointer after it is never followed.
		{"broken chain after a full-size page", put32(document, docNexts[1], 0xfffffff0), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, src, err := readChecked(t, tc.data)
			if tc.ok != (err == nil) {
				t.Fatalf("error %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v is not ErrMalformed", err)
			}
			if src.read > 64<<10 {
				t.Errorf("read %d bytes", src.read)
			}
			t.Log(err)
		})
	}
}

// TestReaderErrors checks that errors of the ReaderAt come back as they
// are, not as ErrMalformed, and that a ReaderAt shorter than its stated
// size is an I/O error.
func TestReaderErrors(t *testing.T) {
	data := readTestdata(t, "vips-pages.tif")
	boom := errors.New("boom")
	_, err := Read(failingReader{data, 5000, boom}, int64(len(data)))
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("got %v, want boom", err)
	}
	_, err = Read(bytes.NewReader(data[:6000]), int64(len(data)))
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := Read(bytes.NewReader(data), -1); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative size: %v", err)
	}
}

// failingReader fails every read that reaches past limit.
type failingReader struct {
	b     []byte
	limit int64
	err   error
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, f.err
	}
	return copy(p, f.b[off:]), nil
}
