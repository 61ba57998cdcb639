package resolve

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source/fs"
)

func TestOpen(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"photo.tif", "a/b/deep.jpg", "twin.jpg", "twin.png", "notes.txt", "notes.jpg.bak", "UPPER.JPG"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	r := New(src)
	cases := []struct {
		id, key string
		status  int
	}{
		{"photo.tif", "photo.tif", 0},
		{"photo", "photo.tif", 0},
		{"a/b/deep", "a/b/deep.jpg", 0},
		{"a/b/deep.jpg", "a/b/deep.jpg", 0},
		{"UPPER", "UPPER.JPG", 0},
		{"twin", "", 404}, // ambiguous
		{"twin.png", "twin.png", 0},
		{"notes.txt", "", 404}, // not an image
		{"notes", "", 404},
		{"missing", "", 404},
		{"a/b", "", 404},
		{"../photo.tif", "", 400},
		{"/etc/passwd", "", 400},
		{"a/../photo.tif", "", 400},
		{"photo.tif\x00", "", 400},
		{"", "", 400},
	}
	for _, tc := range cases {
		obj, err := r.Open(context.Background(), tc.id)
		if tc.status == 0 {
			if err != nil {
				t.Errorf("Open(%q): %v", tc.id, err)
				continue
			}
			if obj.Key != tc.key {
				t.Errorf("Open(%q) = %q, want %q", tc.id, obj.Key, tc.key)
			}
			obj.Close()
			continue
		}
		if err == nil {
			obj.Close()
			t.Errorf("Open(%q) succeeded, want %d", tc.id, tc.status)
			continue
		}
		if got, msg := fault.Status(err); got != tc.status {
			t.Errorf("Open(%q): status %d (%s), want %d", tc.id, got, msg, tc.status)
		}
	}
}

// TestResolvePyramid finds tile pyramids: folders holding an info.json.
func TestResolvePyramid(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"maps/sheet/info.json", "maps/sheet/0,0,256,256/256,256/0/default.jpg",
		"both.tif", "both/info.json", "plain/readme.txt", ".hidden/info.json", "dir.jpg/info.json"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	r := New(src)
	for _, tc := range []struct {
		id, key, dir string
		status       int
	}{
		{"maps/sheet", "maps/sheet/info.json", "maps/sheet", 0},
		// An identifier with an image extension names a file only, so
		// that an unknown one costs one look at the store.
		{"dir.jpg", "", "", 404},
		{"both", "both.tif", "", 0}, // files win
		{"plain", "", "", 404},
		{".hidden", "", "", 404},
		{"maps", "", "", 404},
		{"maps/sheet/0,0,256,256/256,256/0/default.jpg", "maps/sheet/0,0,256,256/256,256/0/default.jpg", "", 0},
		{"maps/../maps/sheet", "", "", 400},
	} {
		tgt, err := r.Resolve(context.Background(), tc.id)
		if tc.status != 0 {
			if got, _ := fault.Status(err); err == nil || got != tc.status {
				t.Errorf("Resolve(%q): %v, want %d", tc.id, err, tc.status)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.id, err)
			continue
		}
		if tgt.Object.Key != tc.key || tgt.Dir != tc.dir {
			t.Errorf("Resolve(%q) = %q in %q, want %q in %q", tc.id, tgt.Object.Key, tgt.Dir, tc.key, tc.dir)
		}
		tgt.Object.Close()
	}
}

func TestSplitAssociated(t *testing.T) {
	for _, c := range []struct{ id, slide, name string }{
		{"case-17/slide.svs;label", "case-17/slide.svs", "label"},
		{"a.ndpi;macro", "a.ndpi", "macro"},
		{"a.TIFF;thumbnail", "a.TIFF", "thumbnail"},
		{"a.svs;overview", "a.svs;overview", ""},
		{"a.jpg;label", "a.jpg;label", ""},
		{"a.svs", "a.svs", ""},
		{";label", ";label", ""},
		{"dir;x/a.svs;label", "dir;x/a.svs", "label"},
	} {
		if s, n := SplitAssociated(c.id); s != c.slide || n != c.name {
			t.Errorf("%q: %q %q, want %q %q", c.id, s, n, c.slide, c.name)
		}
	}
}

// FuzzSplitAssociated checks that a split identifier joins back to the
// one given, and names only a known associated image.
func FuzzSplitAssociated(f *testing.F) {
	f.Add("slide.svs;label")
	f.Add("x.tif;macro;label")
	f.Fuzz(func(t *testing.T, id string) {
		s, n := SplitAssociated(id)
		switch {
		case n == "" && s != id:
			t.Fatalf("%q: %q without a name", id, s)
		case n != "" && s+";"+n != id:
			t.Fatalf("%q: %q + %q", id, s, n)
		case n != "" && n != "label" && n != "macro" && n != "thumbnail":
			t.Fatalf("%q: name %q", id, n)
		}
	})
}
