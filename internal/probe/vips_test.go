package probe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// vipsLine matches vipsheader's one-line summary, "name: 301x203 uchar,
// 3 bands, srgb, tiffload".
var vipsLine = regexp.MustCompile(`: (\d+)x(\d+) \w+, (\d+) bands?,`)

// TestAgainstLibvips loads every level Read reports through vipsheader,
// with the load option the level names, and compares the sizes (and the
// bands and orientation, where Read reports them). It is how the rounding
// rules in this package were found, and it keeps them honest when libvips
// changes.
func TestAgainstLibvips(t *testing.T) {
	vh, err := exec.LookPath("vipsheader")
	if err != nil {
		t.Skip("vipsheader not installed")
	}
	dir := t.TempDir()
	for i, s := range samples(t) {
		if s.ext == "" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			t.Parallel() // vipsheader takes most of the time, mostly starting up
			info, err := Read(&countingReader{b: s.data}, int64(len(s.data)))
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, fmt.Sprintf("%02d%s", i, s.ext))
			if err := os.WriteFile(name, s.data, 0o600); err != nil {
				t.Fatal(err)
			}
			var args []string
			for _, l := range info.Levels {
				args = append(args, name+vipsOption(info.Format, l))
			}
			out, err := exec.Command(vh, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("vipsheader %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			lines := vipsLine.FindAllStringSubmatch(string(out), -1)
			if len(lines) != len(info.Levels) {
				t.Fatalf("vipsheader printed %d sizes for %d levels:\n%s", len(lines), len(info.Levels), out)
			}
			for j, l := range info.Levels {
				w, _ := strconv.Atoi(lines[j][1])
				h, _ := strconv.Atoi(lines[j][2])
				bands, _ := strconv.Atoi(lines[j][3])
				if w != l.Width || h != l.Height {
					t.Errorf("%s: libvips %dx%d, Read %dx%d", args[j], w, h, l.Width, l.Height)
				}
				if j == 0 && info.Bands != 0 && bands != info.Bands {
					t.Errorf("%s: libvips %d bands, Read %d", args[j], bands, info.Bands)
				}
			}
			if last := info.Levels[len(info.Levels)-1]; info.Format == JP2 && last.Width > 1 && last.Height > 1 {
				// Read must not miss levels either: one page further
				// down, OpenJPEG refuses (it counts the resolutions of
				// every component, unlike libvips' n-pages).
				next := fmt.Sprintf("%s[page=%d]", name, last.Page+1)
				if out, err := exec.Command(vh, next).CombinedOutput(); err == nil {
					t.Errorf("%s loads: %s", next, out)
				}
			}
			if info.Orientation != 0 {
				out, err := exec.Command(vh, "-f", "orientation", name).Output()
				if err != nil {
					t.Fatal(err)
				}
				if o, _ := strconv.Atoi(strings.TrimSpace(string(out))); o != info.Orientation {
					t.Errorf("libvips orientation %d, Read %d", o, info.Orientation)
				}
			}
		})
	}
}

// vipsOption returns the load option that selects level l in libvips.
func vipsOption(f Format, l Level) string {
	switch {
	case f == TIFF && l.SubIFD >= 0:
		return fmt.Sprintf("[subifd=%d]", l.SubIFD)
	case f == TIFF || f == JP2:
		return fmt.Sprintf("[page=%d]", l.Page)
	case f == JPEG:
		return fmt.Sprintf("[shrink=%d]", l.Shrink)
	}
	return ""
}
