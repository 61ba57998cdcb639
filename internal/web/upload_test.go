package web

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iiifd/iiifd/internal/resolve"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"photo.jpg", "photo"},
		{"My Holiday Photo (2).JPG", "My-Holiday-Photo-2"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\scan.tif`, "scan"},
		{".hidden.png", "hidden"},
		{"...", "upload"},
		{"", "upload"},
		{"a.b.c.png", "a-b-c"},
		{"Über straße.png", "Über-straße"},
		{"x\x00y\n.png", "x-y"},
		{"-_-.png", "_"},
		{strings.Repeat("é", 80) + ".png", strings.Repeat("é", 50)},
	}
	for _, tc := range tests {
		if got := sanitize(tc.in); got != tc.want {
			t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../a/b.png", ".x", "a\\b", "\xff\xfe.png", "con.tif"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := sanitize(name)
		id := s + uploadExt
		if s == "" || len(s) > maxStem || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") ||
			strings.ContainsAny(s, "/\\.") || !utf8.ValidString(s) || !resolve.ValidIdentifier(id) || !resolve.HasImageExtension(id) {
			t.Fatalf("sanitize(%q) = %q", name, s)
		}
		if sanitize(id) != s {
			t.Fatalf("sanitize is not stable: %q → %q → %q", name, s, sanitize(id))
		}
	})
}

// pngHead is the start of a PNG: enough for the sniffing to know it.
var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00\x90\x91\x68\x36")

func form(t testing.TB, parts func(*multipart.Writer), closeIt bool) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	parts(mw)
	if closeIt {
		mw.Close()
	}
	return mw.FormDataContentType(), b.Bytes()
}

func TestReceive(t *testing.T) {
	img := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 1000)...)
	big := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 100<<10)...)
	file := func(name string, data []byte) func(*multipart.Writer) {
		return func(mw *multipart.Writer) {
			mw.WriteField("note", "hello")
			w, _ := mw.CreateFormFile("file", name)
			w.Write(data)
		}
	}
	ctFile, bodyFile := form(t, file("photo.png", img), true)
	ctCut, bodyCut := form(t, file("photo.png", img), false)
	ctNone, bodyNone := form(t, func(mw *multipart.Writer) { mw.WriteField("note", "x") }, true)
	ctText, bodyText := form(t, file("notes.txt", []byte("just some text, not an image")), true)
	ctBig, bodyBig := form(t, file("big.png", big), true)
	tests := []struct {
		name     string
		ct       string
		body     []byte
		limit    int64
		wantName string
		wantN    int64
		status   int
	}{
		{"multipart", ctFile, bodyFile, 1 << 20, "photo.png", int64(len(img)), 0},
		{"raw", "application/octet-stream", img, 1 << 20, "raw.png", int64(len(img)), 0},
		{"raw at the limit", "", img, int64(len(img)), "raw.png", int64(len(img)), 0},
		{"raw over the limit", "", img, int64(len(img)) - 1, "", 0, http.StatusRequestEntityTooLarge},
		{"multipart over the limit", ctBig, bodyBig, 64 << 10, "", 0, http.StatusRequestEntityTooLarge},
		{"big raw over the limit", "", big, 80 << 10, "", 0, http.StatusRequestEntityTooLarge},
		{"multipart cut short", ctCut, bodyCut, 1 << 20, "", 0, http.StatusBadRequest},
		{"multipart without a file", ctNone, bodyNone, 1 << 20, "", 0, http.StatusBadRequest},
		{"not an image", ctText, bodyText, 1 << 20, "", 0, http.StatusUnsupportedMediaType},
		{"empty", "", nil, 1 << 20, "", 0, http.StatusBadRequest},
		{"no boundary", "multipart/form-data", bodyFile, 1 << 20, "", 0, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dst bytes.Buffer
			name, n, err := receive(bytes.NewReader(tc.body), tc.ct, "raw.png", tc.limit, &dst)
			if tc.status != 0 {
				var ue *uploadError
				if !errors.As(err, &ue) || ue.status != tc.status {
					t.Fatalf("err %v, want status %d", err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantName || n != tc.wantN || int64(dst.Len()) != n || !bytes.Equal(dst.Bytes(), img) {
				t.Fatalf("got %q, %d bytes (%d written)", name, n, dst.Len())
			}
		})
	}
}

// errReader fails after its data, as a connection that drops.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestReceiveBrokenConnection(t *testing.T) {
	body := &errReader{r: bytes.NewReader(append(append([]byte{}, pngHead...), make([]byte, 100<<10)...)), err: io.ErrUnexpectedEOF}
	_, _, err := receive(body, "", "x.png", 1<<20, io.Discard)
	var ue *uploadError
	if !errors.As(err, &ue) || ue.status != http.StatusBadRequest {
		t.Fatalf("err %v, want a 400", err)
	}
}

func FuzzReceive(f *testing.F) {
	ct, body := form(f, func(mw *multipart.Writer) {
		w, _ := mw.CreateFormFile("file", "a.png")
		w.Write(pngHead)
	}, true)
	f.Add(ct, body)
	f.Add("application/octet-stream", pngHead)
	f.Add(`multipart/form-data; boundary="x"`, []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nGIF89a\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var dst bytes.Buffer
		const limit = 4096
		_, n, err := receive(bytes.NewReader(body), ct, "x", limit, &dst)
		if err != nil {
			var ue *uploadError
			if !errors.As(err, &ue) {
				t.Fatalf("an error without status: %v", err)
			}
			return
		}
		if n > limit || n != int64(dst.Len()) || n == 0 {
			t.Fatalf("n %d, written %d", n, dst.Len())
		}
	})
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{2 << 30: "2 GiB", 5 << 20: "5 MiB", 3 << 10: "3 KiB", 1000: "1000 bytes"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
