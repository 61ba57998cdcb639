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
