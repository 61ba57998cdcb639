package pixels

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
)

// needOJPH skips the test when OpenJPH's command-line tools are missing,
// and fails it instead when IIIFD_REQUIRE_TOOLS=1 (scripts/test sets it).
func needOJPH(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ojph_compress", "ojph_expand"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("IIIFD_REQUIRE_TOOLS") == "1" || os.Getenv("IIIFD_TEST_TOOLS") == "1" {
				t.Fatalf("%s is not installed (Debian openjph-tools; scripts/deps.sh installs it)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// netpbm is a decoded PGM or PPM: samples interleaved, maxval as written.
type netpbm struct {
	w, h, bands, maxval int
	samples             []int
}

func (n *netpbm) at(x, y, b int) int { return n.samples[(y*n.w+x)*n.bands+b] }

// writeNetpbm writes a deterministic test image with smooth gradients,
// edges and noise, so that every sub-band carries data.
func writeNetpbm(t testing.TB, path string, w, h, bands, maxval int) {
	t.Helper()
	var b bytes.Buffer
	magic := "P6"
	if bands == 1 {
		magic = "P5"
	}
	fmt.Fprintf(&b, "%s\n%d %d\n%d\n", magic, w, h, maxval)
	seed := uint32(12345)
	for y := range h {
		for x := range w {
			for c := range bands {
				seed = seed*1664525 + 1013904223
				v := (x*(c+3) + y*(5-c)) % (maxval + 1)
				if (x/37+y/23)%2 == 0 {
					v = maxval - v
				}
				v = (v + int(seed>>28)) % (maxval + 1)
				if maxval > 255 {
					b.WriteByte(byte(v >> 8))
				}
				b.WriteByte(byte(v))
			}
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readNetpbm reads a binary PGM or PPM as ojph_expand writes them.
func readNetpbm(t testing.TB, path string) *netpbm {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	pos := 0
	for len(fields) < 4 {
		for pos < len(data) && (data[pos] == ' ' || data[pos] == '\n' || data[pos] == '\r' || data[pos] == '\t' || data[pos] == '#') {
			if data[pos] == '#' { // a comment, to the end of the line
				for pos < len(data) && data[pos] != '\n' {
					pos++
				}
				continue
			}
			pos++
		}
		start := pos
		for pos < len(data) && data[pos] != ' ' && data[pos] != '\n' && data[pos] != '\r' && data[pos] != '\t' {
			pos++
		}
		fields = append(fields, string(data[start:pos]))
	}
	pos++ // the single whitespace before the samples
	n := &netpbm{bands: 3}
	if fields[0] == "P5" {
		n.bands = 1
	}
	n.w, _ = strconv.Atoi(fields[1])
	n.h, _ = strconv.Atoi(fields[2])
	n.maxval, _ = strconv.Atoi(fields[3])
	count := n.w * n.h * n.bands
	n.samples = make([]int, count)
	for i := range count {
		if n.maxval > 255 {
			n.samples[i] = int(binary.BigEndian.Uint16(data[pos+2*i:]))
		} else {
			n.samples[i] = int(data[pos+i])
		}
	}
	return n
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// wrapJPH puts a codestream into a JPH file: the JP2 signature, a file
// type box of brand "jph ", a header box and the codestream box.
func wrapJPH(t testing.TB, cs []byte, w, h, bands int) []byte {
	t.Helper()
	box := func(typ string, payload ...[]byte) []byte {
		var b bytes.Buffer
		n := 8
		for _, p := range payload {
			n += len(p)
		}
		binary.Write(&b, binary.BigEndian, uint32(n))
		b.WriteString(typ)
		for _, p := range payload {
			b.Write(p)
		}
		return b.Bytes()
	}
	ihdr := make([]byte, 14)
	binary.BigEndian.PutUint32(ihdr, uint32(h))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(w))
	binary.BigEndian.PutUint16(ihdr[8:], uint16(bands))
	ihdr[10] = 7 // 8 bits
	ihdr[11] = 7 // compression type: JPEG 2000
	space := uint32(16)
	if bands == 1 {
		space = 17
	}
	colr := []byte{1, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(colr[3:], space)
	var out []byte
	out = append(out, box("jP  ", []byte{0x0d, 0x0a, 0x87, 0x0a})...)
	out = append(out, box("ftyp", []byte("jph \x00\x00\x00\x00jph "))...)
	out = append(out, box("jp2h", box("ihdr", ihdr), box("colr", colr))...)
	out = append(out, box("jp2c", cs)...)
	return out
}

// htCase is one generated HT codestream.
type htCase struct {
	name        string
	w, h, bands int
	maxval      int
	args        []string
	decomps     int
	jph         bool
}

var htCases = []htCase{
	{name: "tiled irreversible rgb", w: 700, h: 500, bands: 3, maxval: 255, decomps: 5,
		args: []string{"-tile_size", "{256,256}", "-num_decomps", "5"}},
	{name: "untiled reversible rgb", w: 333, h: 257, bands: 3, maxval: 255, decomps: 4,
		args: []string{"-reversible", "true", "-num_decomps", "4"}},
	{name: "tiled offsets grey jph", w: 411, h: 299, bands: 1, maxval: 255, decomps: 3, jph: true,
		args: []string{"-tile_size", "{100,128}", "-image_offset", "{3,5}", "-tile_offset", "{1,2}", "-num_decomps", "3", "-reversible", "true"}},
	{name: "tiled 16-bit grey", w: 300, h: 260, bands: 1, maxval: 65535, decomps: 3,
		args: []string{"-tile_size", "{128,128}", "-num_decomps", "3", "-reversible", "true"}},
}

// TestHTJ2KExact decodes generated HT codestreams at every resolution
// level, whole and by tiles and regions, and checks every sample against
// ojph_expand's output of the same level: the pixels are exactly the
// reference decoder's (16-bit samples are compared as iiifd serves them,
// on 8 bits, converted by libvips).
func TestHTJ2KExact(t *testing.T) {
	needOJPH(t)
	dir := t.TempDir()
	for _, tc := range htCases {
		t.Run(tc.name, func(t *testing.T) {
			ext := ".ppm"
			if tc.bands == 1 {
				ext = ".pgm"
			}
			src := filepath.Join(dir, tc.name+ext)
			writeNetpbm(t, src, tc.w, tc.h, tc.bands, tc.maxval)
			cs := filepath.Join(dir, tc.name+".j2c")
			run(t, "ojph_compress", append([]string{"-i", src, "-o", cs}, tc.args...)...)
			path := cs
			if tc.jph {
				data, err := os.ReadFile(cs)
				if err != nil {
					t.Fatal(err)
				}
				path = writeFile(t, "ht.jph", wrapJPH(t, data, tc.w, tc.h, tc.bands))
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			info, err := probe.Read(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			c := info.Levels[0].J2K
			if c == nil || !c.HT {
				t.Fatalf("the probe does not see HT: %+v", c)
			}
			if len(info.Levels) != tc.decomps+1 {
				t.Fatalf("%d levels, want %d", len(info.Levels), tc.decomps+1)
			}
			for r, lv := range info.Levels {
				ref := filepath.Join(dir, fmt.Sprintf("%s-%d%s", tc.name, r, ext))
				run(t, "ojph_expand", "-i", cs, "-o", ref, "-skip_res", strconv.Itoa(r))
				want := readNetpbm(t, ref)
				if want.maxval > 255 {
					// iiifd serves 8 bits per sample: compare with the
					// reference brought down by libvips' own conversion.
					want = to8bit(t, ref)
				}
				regions := []image.Rectangle{
					image.Rect(0, 0, want.w, want.h),
					image.Rect(0, 0, min(128, want.w), min(128, want.h)),
					image.Rect(want.w/3, want.h/4, want.w/3+want.w/2, want.h/4+want.h/2),
					image.Rect(want.w-min(37, want.w), want.h-min(29, want.h), want.w, want.h),
				}
				for _, region := range regions {
					checkHTRegion(t, path, lv, region, want)
					// Without the probe's coding, Render must find
					// the HT codestream itself.
					bare := lv
					bare.J2K = nil
					checkHTRegion(t, path, bare, region, want)
				}
			}
		})
	}
}

// to8bit converts a 16-bit PGM to 8 bits with the vips command.
func to8bit(t testing.TB, path string) *netpbm {
	t.Helper()
	out := path + ".8.pgm"
	vipsCmd(t, "colourspace", path, out, "b-w")
	return readNetpbm(t, out)
}

func checkHTRegion(t *testing.T, path string, lv probe.Level, region image.Rectangle, want *netpbm) {
	t.Helper()
	p := mkPlan(region, region.Dx(), region.Dy(), 0, false, "", iiif.FormatPNG)
	got, err := png.Decode(bytes.NewReader(renderBytes(t, path, lv, p)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds().Size() != region.Size() {
		t.Fatalf("level %d region %v: got %v", lv.Page, region, got.Bounds())
	}
	bad := 0
	for y := region.Min.Y; y < region.Max.Y; y++ {
		for x := region.Min.X; x < region.Max.X; x++ {
			px := nrgba(got, x-region.Min.X, y-region.Min.Y)
			gotv := []int{int(px.R), int(px.G), int(px.B)}
			for b := range want.bands {
				w := want.at(x, y, b)
				if gotv[b] != w {
					if bad < 5 {
						t.Errorf("level %d region %v: pixel %d,%d band %d is %d, ojph_expand has %d",
							lv.Page, region, x, y, b, gotv[b], w)
					}
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("level %d region %v (J2K given: %v): %d samples differ", lv.Page, region, lv.J2K != nil, bad)
	}
}

// TestHTJ2KMixedRefused checks that a codestream whose CAP marker says
// code-blocks mix HT and classic coding is refused with 501, not decoded.
func TestHTJ2KMixedRefused(t *testing.T) {
	needOJPH(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "m.ppm")
	writeNetpbm(t, src, 64, 64, 3, 255)
	cs := filepath.Join(dir, "m.j2c")
	run(t, "ojph_compress", "-i", src, "-o", cs)
	data, err := os.ReadFile(cs)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte{0xff, 0x50})
	if at < 0 {
		t.Fatal("no CAP marker")
	}
	data[at+8] |= 0xc0 // Ccap15: MIXED
	path := writeFile(t, "mixed.j2c", data)
	info, err := probe.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Levels[0].J2K; !c.HT || !c.Mixed {
		t.Fatalf("probe: %+v", c)
	}
	for _, lv := range []probe.Level{info.Levels[0], full} {
		p := mkPlan(image.Rect(0, 0, 64, 64), 64, 64, 0, false, "", iiif.FormatPNG)
		err = Render(context.Background(), engine.Input{Path: path, Level: lv}, p, engine.EncodeOptions{}, &bytes.Buffer{})
		if status, _ := fault.Status(err); status != http.StatusNotImplemented {
			t.Fatalf("Render: %v (status %d), want 501", detail(err), status)
		}
	}
}
