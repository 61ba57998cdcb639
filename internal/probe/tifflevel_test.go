package probe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

// TestReadBytes records what a probe costs: Read must fetch a few KiB, one
// chunk per IFD, however many tiles the file has.
func TestReadBytes(t *testing.T) {
	huge := writeTIFF(le, true, pyramid(100000, 80000, 256, 3, 1)...) // 122,383 tiles at full size
	tests := []struct {
		name      string
		data      []byte
		levels    int
		maxReads  int
		maxBytes  int64
		wantTiles int
	}{
		{"vips-pages.tif", readTestdata(t, "vips-pages.tif"), 4, 5, 5 * chunkSize, 20},
		{"vips-subifd.tif", readTestdata(t, "vips-subifd.tif"), 5, 6, 6 * chunkSize, 70},
		{"bigtiff 100000x80000", huge, 10, 11, 11 * chunkSize, 391 * 313},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &countingReader{b: tc.data}
			info, err := Read(r, int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes file, %d levels: %d reads, %d bytes", len(tc.data), len(info.Levels), r.reads, r.bytes)
			if len(info.Levels) != tc.levels {
				t.Errorf("%d levels, want %d", len(info.Levels), tc.levels)
			}
			if r.reads > tc.maxReads || r.bytes > tc.maxBytes {
				t.Errorf("read %d bytes in %d calls, want at most %d in %d", r.bytes, r.reads, tc.maxBytes, tc.maxReads)
			}
			if got := info.Levels[0].TIFF.Chunks(); got != tc.wantTiles {
				t.Errorf("%d tiles, want %d", got, tc.wantTiles)
			}
		})
	}
}

// TestReadCostAll logs what probing each sample costs, and bounds it: no
// sample needs more than a dozen reads or 64 KiB.
func TestReadCostAll(t *testing.T) {
	for _, s := range samples(t) {
		r := &countingReader{b: s.data}
		info, err := Read(r, int64(len(s.data)))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%-40s %8d bytes, %2d levels: %2d reads, %6d bytes", s.name, len(s.data), len(info.Levels), r.reads, r.bytes)
		if r.reads > 12 || r.bytes > 64<<10 {
			t.Errorf("%s: %d reads, %d bytes", s.name, r.reads, r.bytes)
		}
	}
}

// TestTileRanges fetches stored tiles through TileRange, TileRanges and
// JPEGTables, and checks them against what the writer put there.
func TestTileRanges(t *testing.T) {
	t.Run("vips jpeg tiles", func(t *testing.T) {
		data := readTestdata(t, "vips-pages.tif")
		r := bytes.NewReader(data)
		info, err := Read(r, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range info.Levels {
			tl := l.TIFF
			if tl.Compression != 7 || tl.Photometric != 6 || tl.BitsPerSample != 8 || !tl.Tiled() {
				t.Fatalf("level %s: compression %d, photometric %d, bits %d", levelString(l), tl.Compression, tl.Photometric, tl.BitsPerSample)
			}
			tables, err := tl.JPEGTables(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(tables, []byte{0xff, 0xd8}) || !bytes.HasSuffix(tables, []byte{0xff, 0xd9}) {
				t.Errorf("JPEGTables % x...: not an abbreviated JPEG stream", tables[:min(len(tables), 4)])
			}
			across, down := tl.Grid()
			if across*down != tl.Chunks() {
				t.Errorf("grid %dx%d, %d tiles stored", across, down, tl.Chunks())
			}
			rs, err := tl.TileRanges(r, 0, tl.Chunks())
			if err != nil {
				t.Fatal(err)
			}
			for i, br := range rs {
				tile := data[br.Offset : br.Offset+br.Length]
				// Each stored tile is a JPEG stream without tables.
				if !bytes.HasPrefix(tile, []byte{0xff, 0xd8}) || !bytes.HasSuffix(tile, []byte{0xff, 0xd9}) {
					t.Errorf("level %s tile %d: % x...", levelString(l), i, tile[:min(len(tile), 4)])
				}
				if one, err := tl.TileRange(r, i); err != nil || one != br {
					t.Errorf("TileRange(%d) = %v, %v; TileRanges gave %v", i, one, err, br)
				}
			}
		}
	})

	t.Run("written tiles", func(t *testing.T) {
		tables := []byte{0xff, 0xd8, 0xff, 0xdb, 0xff, 0xd9}
		for _, big := range []bool{false, true} {
			for _, order := range []byteOrder{le, be} {
				for _, tiled := range []bool{true, false} {
					// Tiles with tables stored after the IFD; strips
					// with tables short enough to sit in the entry.
					ims := []tiffImage{{w: 100, h: 75, tw: 16, th: 16}, {w: 50, h: 37, tw: 16, th: 16}}
					want, chunk, tab := []int{7 * 5, 4 * 3}, []int64{16 * 16 * 3, 16 * 16 * 3}, tables
					if !tiled {
						ims = []tiffImage{{w: 100, h: 75, rowsPerStrip: 5}, {w: 50, h: 37, rowsPerStrip: 5}}
						want, chunk, tab = []int{15, 8}, []int64{100 * 5 * 3, 50 * 5 * 3}, tables[:2]
					}
					for i := range ims {
						ims[i].compression, ims[i].jpegTables = 7, tab
					}
					data, ifds, _ := writeTIFFChain(order, big, ims...)
					r := bytes.NewReader(data)
					info, err := Read(r, int64(len(data)))
					if err != nil {
						t.Fatal(err)
					}
					if len(info.Levels) != 2 {
						t.Fatalf("%d levels", len(info.Levels))
					}
					for i, l := range info.Levels {
						tl := l.TIFF
						n := tl.Chunks()
						across, down := tl.Grid()
						if n != across*down || n != want[i] || tl.Tiled() != tiled {
							t.Errorf("level %d: %d chunks, grid %dx%d, want %d", i, n, across, down, want[i])
						}
						rs, err := tl.TileRanges(r, 0, n)
						if err != nil {
							t.Fatal(err)
						}
						if tl.IFD() != int64(ifds[i]) {
							t.Errorf("level %d: IFD at %d, want %d", i, tl.IFD(), ifds[i])
						}
						// TileArrays names every byte TileRanges reads.
						arrays := tl.TileArrays()
						if len(arrays) != 2 {
							t.Errorf("level %d: TileArrays %v, want 2 arrays", i, arrays)
						}
						only, err := tl.TileRanges(onlyRanges{r, arrays}, 0, n)
						if err != nil || !slices.Equal(only, rs) {
							t.Errorf("level %d: TileRanges from the arrays alone: %v, %v; want %v", i, only, err, rs)
						}
						// The writer stores each image's one shared chunk
						// first, then its IFD; the IFD offsets say where.
						for _, br := range rs {
							if br.Length != chunk[i] || br.Offset >= ifds[i] || br.Offset+br.Length > ifds[i] {
								t.Errorf("level %d: range %+v, want %d bytes before %d", i, br, chunk[i], ifds[i])
							}
						}
						got, err := tl.JPEGTables(r)
						if err != nil || !bytes.Equal(got, tab) {
							t.Errorf("level %d: JPEGTables % x, %v", i, got, err)
						}
						// Tables held in their entry take no bytes of
						// their own; others are where JPEGTablesRange says.
						inline := 4
						if big {
							inline = 8
						}
						if br, ok := tl.JPEGTablesRange(); ok != (len(tab) > inline) {
							t.Errorf("level %d: JPEGTablesRange %v, %v for %d bytes of tables", i, br, ok, len(tab))
						} else if ok {
							only, err := tl.JPEGTables(onlyRanges{r, []ByteRange{br}})
							if err != nil || !bytes.Equal(only, tab) {
								t.Errorf("level %d: JPEGTables from their range alone: % x, %v", i, only, err)
							}
						}
						if _, err := tl.TileRange(r, n); !errors.Is(err, ErrMalformed) {
							t.Errorf("TileRange past the end: %v", err)
						}
						if _, err := tl.TileRanges(r, 0, maxRangeBatch+1); err == nil {
							t.Errorf("TileRanges of %d: no error", maxRangeBatch+1)
						}
					}
				}
			}
		}
	})
}

// onlyRanges fails every read that is not within one of its ranges.
type onlyRanges struct {
	r  io.ReaderAt
	rs []ByteRange
}

func (o onlyRanges) ReadAt(p []byte, off int64) (int, error) {
	for _, br := range o.rs {
		if off >= br.Offset && off+int64(len(p)) <= br.Offset+br.Length {
			return o.r.ReadAt(p, off)
		}
	}
	return 0, fmt.Errorf("read of %d bytes at %d outside %v", len(p), off, o.rs)
}
