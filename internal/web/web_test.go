package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	iofs "io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/plugin"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
	"github.com/iiifd/iiifd/internal/web"
)

// workerArg makes the test binary the ingest worker of uploads, as
// `iiifd ingest --ingest-worker` is for the real program.
const workerArg = "--ingest-worker"

// slowIngestEnv, when set to a file name, makes the test binary's ingest
// worker hang instead: it writes part of its output, starts a child of
// its own (sleepArg) that would outlive it, writes that child's process
// id to the file, and sleeps. Killing only the worker would leave the
// child; the test checks that the worker's whole process group is gone.
const (
	slowIngestEnv = "IIIFD_TEST_SLOW_INGEST"
	sleepArg      = "--sleep"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sleepArg {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		if pidFile := os.Getenv(slowIngestEnv); pidFile != "" {
			out := os.Args[len(os.Args)-1]
			os.WriteFile(out, []byte("II*\x00 a partial pyramid"), 0o644)
			child := exec.Command(os.Args[0], sleepArg)
			child.Stdout = os.Stdout // holds the worker's pipe open too
			if err := child.Start(); err != nil {
				os.Exit(3)
			}
			os.WriteFile(pidFile, []byte(strconv.Itoa(child.Process.Pid)), 0o644)
			fmt.Println("progress 10")
			time.Sleep(time.Hour)
		}
		os.Exit(ingest.ServeWorker(context.Background(), os.Args[2:], os.Stdout))
	}
	os.Exit(m.Run())
}

const token = "test-admin-token-0123456789"

// server runs the whole app on root (the embedded samples when empty)
// on loopback.
func server(t testing.TB, root string, edit func(*config.Config)) *httptest.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Root = root
	cfg.AdminToken = token
	cfg.CacheMemory = 0
	cfg.IngestCommand = []string{os.Args[0], workerArg}
	if edit != nil {
		edit(&cfg)
	}
	_, srv := apptest.Serve(t, cfg)
	return srv
}

// pngBytes is a w×h PNG gradient.
func pngBytes(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestGallery(t *testing.T) {
	root := t.TempDir()
	img := pngBytes(t, 40, 30)
	for i := range 26 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("img-%02d.png", i)), img, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "maps"), 0o755)
	os.WriteFile(filepath.Join(root, "maps", "sheet.png"), img, 0o644)
	os.WriteFile(filepath.Join(root, "notes.txt"), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(root, ".hidden.png"), img, 0o644)
	srv := server(t, root, nil)
	// A tile pyramid (a folder with info.json) is one image.
	src := filepath.Join(t.TempDir(), "src.png")
	os.WriteFile(src, pngBytes(t, 600, 400), 0o644)
	if err := ingest.Run(context.Background(), src, filepath.Join(root, "zz-pyramid"), ingest.Options{Format: ingest.FormatTiles, TileSize: 256}, nil); err != nil {
		t.Fatal(err)
	}
	thumb := regexp.MustCompile(`<img src="([^"]+)" alt="Thumbnail of ([^"]+)"`)
	tests := []struct {
		query     string
		wantNames []string
		wantText  []string
	}{
		{"", []string{"img-00", "img-23"}, []string{"28 images", "page 1 of 2", `rel="next"`, "40 × 30 px"}},
		{"?page=2", []string{"img-24", "img-25", "maps/sheet", "zz-pyramid"}, []string{"page 2 of 2", `rel="prev"`, "600 × 400 px"}},
		{"?page=99", []string{"img-24", "img-25", "maps/sheet", "zz-pyramid"}, nil},
		{"?q=SHEET", []string{"maps/sheet"}, []string{"1 image matching"}},
		{"?q=nothing", nil, []string{"No images match this filter"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			res, body := get(t, srv.URL+"/"+tc.query)
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
			}
			var names []string
			for _, m := range thumb.FindAllStringSubmatch(body, -1) {
				names = append(names, m[2])
			}
			if len(tc.wantNames) > 0 && (len(names) == 0 || names[0] != tc.wantNames[0] || names[len(names)-1] != tc.wantNames[len(tc.wantNames)-1]) {
				t.Errorf("names %v, want from %v", names, tc.wantNames)
			}
			if len(tc.wantNames) == 0 && len(names) != 0 {
				t.Errorf("names %v, want none", names)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if strings.Contains(body, "hidden") || strings.Contains(body, "notes") {
				t.Error("hidden or non-image files are listed")
			}
		})
	}
	// The thumbnails are served by the Image API.
	for _, q := range []string{"maps", "pyramid"} {
		_, body := get(t, srv.URL+"/?q="+q)
		m := thumb.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("?q=%s: no thumbnail", q)
		}
		res, _ := get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("thumbnail %s: %d %s", m[1], res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

func TestDocuments(t *testing.T) {
	srv := server(t, "", nil)
	tests := []struct {
		path, accept string
		status       int
		ctype        string
		want         []string
	}{
		{"/iiif/presentation/3/mandelbrot.tif/manifest", "", 200, "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\"",
			[]string{`"type": "Manifest"`, `"width": 6144`, `"type": "ImageService3"`, srv.URL + "/iiif/3/mandelbrot.tif"}},
		{"/iiif/presentation/3/mandelbrot/manifest", "application/json", 200, "application/json", []string{`"motivation": "painting"`}},
		{"/iiif/presentation/3/nope/manifest", "", 404, "application/json", []string{`"status": 404`}},
		{"/iiif/presentation/3/..%2Fetc/manifest", "", 400, "application/json", nil},
		{"/iiif/presentation/3/mandelbrot.tif/other", "", 404, "application/json", nil},
		{"/iiif/presentation/3/collection", "", 200, "application/ld+json;profile=\"http://iiif.io/api/presentation/3/context.json\"",
			[]string{`"type": "Collection"`, "4 images", srv.URL + "/iiif/presentation/3/zoneplate.jp2/manifest"}},
		{"/iiif/presentation/3/collection/1", "", 404, "application/json", nil},
		{"/iiif/presentation/3/collection/x", "", 404, "application/json", nil},
		{"/view/mandelbrot.tif", "", 200, "text/html; charset=utf-8",
			[]string{srv.URL + "/iiif/3/mandelbrot.tif/info.json", "/iiif/presentation/3/mandelbrot.tif/manifest", "openseadragon", "6144 × 4608"}},
		{"/view/nope.tif", "", 404, "text/html; charset=utf-8", []string{"no image with identifier"}},
		{"/nowhere", "", 404, "text/html; charset=utf-8", nil},
		{"/upload", "", 200, "text/html; charset=utf-8", []string{`id="upload-form"`, "2 GiB"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, body := get(t, srv.URL+tc.path, "Accept", tc.accept)
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("%d %q, want %d %q: %s", res.StatusCode, res.Header.Get("Content-Type"), tc.status, tc.ctype, body)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			if strings.Contains(body, os.TempDir()) {
				t.Error("a file path in the answer")
			}
		})
	}
	// Conditional manifest requests.
	res, _ := get(t, srv.URL+"/iiif/presentation/3/julia.jpg/manifest")
	res2, _ := get(t, srv.URL+"/iiif/presentation/3/julia.jpg/manifest", "If-None-Match", res.Header.Get("ETag"))
	if res.Header.Get("ETag") == "" || res2.StatusCode != http.StatusNotModified {
		t.Errorf("ETag %q, revalidation %d", res.Header.Get("ETag"), res2.StatusCode)
	}
	// The same preconditions as images (RFC 9110 §13.2.2): "*" matches any
	// representation, an ETag inside another tag is no match, and
	// If-Match is honoured.
	for _, tc := range []struct {
		header, value string
		status        int
	}{
		{"If-None-Match", "*", http.StatusNotModified},
		{"If-None-Match", `"x` + strings.Trim(res.Header.Get("ETag"), `"`) + `"`, http.StatusOK},
		{"If-Match", `"other"`, http.StatusPreconditionFailed},
	} {
		if r, _ := get(t, srv.URL+"/iiif/presentation/3/julia.jpg/manifest", tc.header, tc.value); r.StatusCode != tc.status {
			t.Errorf("%s: %s: %d, want %d", tc.header, tc.value, r.StatusCode, tc.status)
		}
	}
	// CORS preflight.
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/iiif/presentation/3/julia.jpg/manifest", nil)
	req.Header.Set("Origin", "http://elsewhere")
	req.Header.Set("Access-Control-Request-Method", "GET")
	pre, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight %d %v", pre.StatusCode, pre.Header)
	}
}

func TestAssets(t *testing.T) {
	srv := server(t, "", nil)
	_, page := get(t, srv.URL+"/")
	m := regexp.MustCompile(`href="[^"]*(/assets/([0-9a-f]+)/site\.css)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no stylesheet link in the page")
	}
	res, body := get(t, srv.URL+m[1])
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "--fg") {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	res2, _ := get(t, srv.URL+m[1], "If-None-Match", res.Header.Get("ETag"))
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation %d", res2.StatusCode)
	}
	old, _ := get(t, srv.URL+"/assets/0000000000000000/site.css")
	if old.StatusCode != 200 || old.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("old digest: %d %q", old.StatusCode, old.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/assets/" + m[2] + "/nope.css", "/assets/" + m[2] + "/../web.go", "/assets/" + m[2] + "/osd"} {
		if res, _ := get(t, srv.URL+p); res.StatusCode != 404 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
}

// post sends an upload; body as multipart when name is set, raw
// otherwise (query carries its name).
func post(t testing.TB, url, tok string, ctype string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, body)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", ctype)
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func multipartBody(name string, data []byte) (string, *bytes.Buffer) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormFile("file", name)
	w.Write(data)
	mw.Close()
	return mw.FormDataContentType(), &b
}

// leftovers lists hidden files (uploads in progress, work directories)
// under root.
func leftovers(t testing.TB, root string) []string {
	var out []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestUpload(t *testing.T) {
	root := t.TempDir()
	srv := server(t, root, func(c *config.Config) { c.UploadMaxSize = 200 << 10 })
	img := pngBytes(t, 300, 200)
	os.WriteFile(filepath.Join(root, "taken.tif"), img, 0o644)
	huge := append(append([]byte{}, img[:64]...), make([]byte, 300<<10)...)
	julia, err := iofs.ReadFile(samples.FS(), "julia.jpg")
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := multipartBody("x", nil)
	tests := []struct {
		name    string
		query   string
		tok     string
		ctype   string
		body    func() io.Reader
		status  int
		wantID  string
		wantErr string
	}{
		{"no token", "", "", "", func() io.Reader { return bytes.NewReader(img) }, 401, "", "bearer token"},
		{"wrong token", "", "wrong-token-wrong-token", "", func() io.Reader { return bytes.NewReader(img) }, 401, "", "bearer token"},
		{"multipart", "?wait=1", token, "", func() io.Reader { _, b := multipartBody("My photo.png", img); return b }, 201, "My-photo.tif", ""},
		{"raw", "?wait=1&name=raw.png", token, "image/png", func() io.Reader { return bytes.NewReader(img) }, 201, "raw.tif", ""},
		{"exists", "?wait=1", token, "", func() io.Reader { _, b := multipartBody("taken.png", img); return b }, 409, "", "exists already"},
		{"not an image", "?name=a.txt", token, "text/plain", func() io.Reader { return strings.NewReader("hello, world") }, 415, "", "not an image format"},
		{"too big", "?name=big.png", token, "image/png", func() io.Reader { return bytes.NewReader(huge) }, 413, "", "larger than the limit of 200 KiB"},
		{"too big, unknown length", "?name=big.png", token, "image/png", func() io.Reader { return io.MultiReader(bytes.NewReader(huge)) }, 413, "", "larger than"},
		{"cut short", "", token, "", func() io.Reader {
			_, b := multipartBody("cut.png", img)
			return bytes.NewReader(b.Bytes()[:b.Len()-20])
		}, 400, "", "incomplete"},
		{"damaged image", "?wait=1&name=damaged.png", token, "image/png", func() io.Reader { return bytes.NewReader(img[:len(img)/2]) }, 400, "", "damaged or incomplete"},
		// A JPEG cut at 5000 bytes crashed the ingest worker, and the
		// answer quoted the crash (issue 14 item 8).
		{"truncated jpeg", "?wait=1&name=cut.jpg", token, "image/jpeg", func() io.Reader { return bytes.NewReader(julia[:5000]) }, 400, "", "could not be decoded: it is truncated"},
		{"empty", "?name=e.png", token, "image/png", func() io.Reader { return bytes.NewReader(nil) }, 400, "", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			if ctype == "" {
				ctype = ct
			}
			body := tc.body()
			if tc.ctype == "" && tc.tok != "" {
				// A fresh boundary per body: take it from the body itself.
				b, _ := io.ReadAll(body)
				ctype = "multipart/form-data; boundary=" + strings.TrimPrefix(strings.SplitN(string(b), "\r\n", 2)[0], "--")
				body = bytes.NewReader(b)
			}
			status, out := post(t, srv.URL+"/admin/images"+tc.query, tc.tok, ctype, body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if tc.wantErr != "" && !strings.Contains(fmt.Sprint(out["error"]), tc.wantErr) {
				t.Errorf("error %v, want %q", out["error"], tc.wantErr)
			}
			if tc.wantID != "" {
				if out["identifier"] != tc.wantID || out["state"] != "done" || out["percent"] != 100.0 {
					t.Fatalf("%v", out)
				}
				res, info := get(t, fmt.Sprint(out["info"]))
				if res.StatusCode != 200 || !strings.Contains(info, `"width": 300`) && !strings.Contains(info, `"width":300`) {
					t.Errorf("info.json of the upload: %d %s", res.StatusCode, info)
				}
				_, gallery := get(t, srv.URL+"/")
				if !strings.Contains(gallery, "/view/"+tc.wantID) {
					t.Errorf("the upload is not in the gallery")
				}
				res, _ = get(t, fmt.Sprint(out["url"]), "Authorization", "Bearer "+token)
				if res.StatusCode != 200 {
					t.Errorf("job status %d", res.StatusCode)
				}
			}
			if l := leftovers(t, root); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "damaged.tif")); err == nil {
		t.Error("a damaged upload was published")
	}
}

// TestUploadTruncatedConnection sends a body shorter than its
// Content-Length and closes the connection: nothing stays behind.
func TestUploadTruncatedConnection(t *testing.T) {
	root := t.TempDir()
	srv := server(t, root, nil)
	img := pngBytes(t, 300, 200)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /admin/images?name=cut.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", token, len(img)+5000)
	conn.Write(img)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 400 {
		t.Errorf("status %d, want 400", res.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(leftovers(t, root)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := leftovers(t, root); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("root holds %v", entries)
	}
}

func TestUploadsOff(t *testing.T) {
	srv := server(t, "", func(c *config.Config) { c.AdminToken = "" })
	status, _ := post(t, srv.URL+"/admin/images?name=a.png", token, "image/png", bytes.NewReader(pngBytes(t, 10, 10)))
	if status != 404 {
		t.Errorf("POST /admin/images without a configured token: %d, want 404", status)
	}
	_, page := get(t, srv.URL+"/upload")
	if !strings.Contains(page, "Uploads are off") {
		t.Errorf("upload page: %s", page)
	}
}

// The embedded sample root takes uploads too.
func TestUploadToSamples(t *testing.T) {
	srv := server(t, "", nil)
	ct, b := multipartBody("new.png", pngBytes(t, 64, 64))
	status, out := post(t, srv.URL+"/admin/images?wait=1", token, ct, b)
	if status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	_, gallery := get(t, srv.URL+"/")
	if !strings.Contains(gallery, "5 images") {
		t.Errorf("gallery after upload: %s", gallery)
	}
}

// TestUploadsAtOnce holds four uploads open: a fifth is refused with 503
// and Retry-After, and once they end an upload is taken again.
func TestUploadsAtOnce(t *testing.T) {
	root := t.TempDir()
	srv := server(t, root, nil)
	img := pngBytes(t, 300, 200)
	// hold starts upload i and keeps it being received: its body gives
	// 100 bytes and then waits. Its status arrives on done when it ends.
	type ended struct{ i, status int }
	done := make(chan ended, 8)
	pipes := make([]*io.PipeWriter, 4)
	hold := func(i int) {
		pr, pw := io.Pipe()
		pipes[i] = pw
		go func() {
			req, _ := http.NewRequest("POST", srv.URL+fmt.Sprintf("/admin/images?name=held-%d.png", i), pr)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := testClient.Do(req)
			if err != nil {
				done <- ended{i, 0} // the client gave up on its broken body
				return
			}
			res.Body.Close()
			done <- ended{i, res.StatusCode}
		}()
		// In its own goroutine: a refused upload's body may never be
		// read; closing the pipe at the end ends the write.
		go pw.Write(img[:100])
	}
	for i := range 4 {
		hold(i)
	}
	// The four are being received once the server's handler has taken
	// them, which a busy machine may take a while to do; each then has
	// its hidden temporary file in the root. This waits for that state,
	// it does not time it: a fifth upload sent before it could take a
	// free slot and leave a held one refused.
	for deadline := time.Now().Add(time.Minute); len(leftovers(t, root)) < 4; time.Sleep(20 * time.Millisecond) {
		select {
		case e := <-done:
			t.Fatalf("held upload %d ended early: %d", e.i, e.status)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server is receiving %d uploads, want the 4 held ones", len(leftovers(t, root)))
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/admin/images?name=fifth.png", bytes.NewReader(img))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a fifth upload at once: %d, want 503", res.StatusCode)
	} else if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	for _, pw := range pipes {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	for range 4 {
		if e := <-done; e.status != 0 && e.status != http.StatusBadRequest {
			t.Errorf("held upload %d: %d", e.i, e.status)
		}
	}
	// Their slots are free again (a handler may end a moment after its
	// client gave up): an upload is received and ingested.
	for retry := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := post(t, srv.URL+"/admin/images?wait=1&name=taken-again.png", token, "image/png", bytes.NewReader(img))
		if status == http.StatusServiceUnavailable && time.Now().Before(retry) {
			continue
		}
		if status != http.StatusCreated || body["state"] != "done" {
			t.Fatalf("an upload after the held ones ended: %d %v, want 201 and done", status, body)
		}
		break
	}
	if _, err := os.Stat(filepath.Join(root, "taken-again.tif")); err != nil {
		t.Errorf("the upload taken again was not ingested: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(leftovers(t, root)) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	if l := leftovers(t, root); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestCollectionPages splits the collection into nested page collections.
func TestCollectionPages(t *testing.T) {
	root := t.TempDir()
	img := pngBytes(t, 20, 10)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		os.WriteFile(filepath.Join(root, n+".png"), img, 0o644)
	}
	cfg := config.Default()
	cfg.Root = root
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Config{Images: a.Service(), List: src, PerCollectionPage: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	type doc struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		PartOf []struct{ ID string }
		Items  []struct{ ID, Type string }
	}
	fetch := func(path string) (int, doc) {
		res, body := get(t, srv.URL+path)
		var d doc
		json.Unmarshal([]byte(body), &d)
		return res.StatusCode, d
	}
	status, top := fetch("/iiif/presentation/3/collection")
	if status != 200 || len(top.Items) != 3 || top.Items[0].Type != "Collection" || top.Items[2].ID != srv.URL+"/iiif/presentation/3/collection/3" {
		t.Fatalf("top: %d %+v", status, top)
	}
	want := [][]string{{"a", "b"}, {"c", "d"}, {"e"}}
	for i, w := range want {
		status, p := fetch(fmt.Sprintf("/iiif/presentation/3/collection/%d", i+1))
		if status != 200 || len(p.Items) != len(w) || len(p.PartOf) != 1 || p.PartOf[0].ID != top.ID {
			t.Fatalf("page %d: %d %+v", i+1, status, p)
		}
		for j, it := range p.Items {
			if it.Type != "Manifest" || it.ID != srv.URL+"/iiif/presentation/3/"+w[j]+".png/manifest" {
				t.Errorf("page %d item %d: %+v", i+1, j, it)
			}
		}
	}
	for _, p := range []string{"/iiif/presentation/3/collection/4", "/iiif/presentation/3/collection/0", "/iiif/presentation/3/collection/01"} {
		if status, _ := fetch(p); status != 404 {
			t.Errorf("%s: %d", p, status)
		}
	}
}

// testClient bounds every request of these tests: a hang fails the test
// that hangs, with its name, instead of the whole package at its timeout.
var testClient = &http.Client{Timeout: 90 * time.Second}

// failingImages answers every Info with err.
type failingImages struct{ err error }

func (f failingImages) Info(context.Context, iiif.Version, string, string) (*service.Info, error) {
	return nil, f.err
}

type noList struct{}

func (noList) List(context.Context, int, func(string) bool) ([]source.Entry, error) { return nil, nil }

// TestErrorPages: the pages and documents answer errors as the IIIF
// routes do: an authorize refusal's challenge and redirect location are
// sent, and a request that ran out of time is a 503 with Retry-After,
// not a 500.
func TestErrorPages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		header string
		value  string
	}{
		{"challenge", &plugin.Denied{Status: 401, Message: "a token is required", Challenge: `Bearer realm="images"`}, 401, "WWW-Authenticate", `Bearer realm="images"`},
		{"redirect", &plugin.Denied{Status: 303, Message: "see /login", Location: "https://example.org/login"}, 303, "Location", "https://example.org/login"},
		{"deadline", fmt.Errorf("reading: %w", context.DeadlineExceeded), 503, "Retry-After", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := web.New(web.Config{Images: failingImages{tc.err}, List: noList{}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/view/julia", "/iiif/presentation/3/julia/manifest"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				if rec.Code != tc.status || rec.Header().Get(tc.header) != tc.value {
					t.Errorf("%s: %d %s=%q, want %d %q", path, rec.Code, tc.header, rec.Header().Get(tc.header), tc.status, tc.value)
				}
			}
		})
	}
}

// alive reports whether the process whose pid is in the file at path
// still runs a few seconds later (a killed process may take a moment to
// end on a busy machine; a zombie, killed but not reaped, counts as
// ended).
func alive(t *testing.T, path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the slow worker left no pid: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
		if err != nil {
			return false
		}
		if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
			return false
		}
	}
	return true
}

// waitFor waits until the file at path exists.
func waitFor(t *testing.T, path string) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow worker did not start")
		}
	}
}

// TestIngestTimeout: an ingest worker that hangs is killed at the time
// limit with everything it started, its partial output is removed, and
// the job says why it failed; on shutdown the same happens.
func TestIngestTimeout(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv(slowIngestEnv, pidFile)
	img := pngBytes(t, 300, 200)
	t.Run("time limit", func(t *testing.T) {
		root := t.TempDir()
		// Long enough for the worker to start on a busy machine.
		srv := server(t, root, func(c *config.Config) { c.IngestTimeout = 5 * time.Second })
		status, body := post(t, srv.URL+"/admin/images?name=slow.png", token, "image/png", bytes.NewReader(img))
		if status != http.StatusAccepted {
			t.Fatalf("upload: %d %v", status, body)
		}
		waitFor(t, pidFile)
		_, js := get(t, fmt.Sprint(body["url"])+"?wait=1", "Authorization", "Bearer "+token)
		body = map[string]any{}
		json.Unmarshal([]byte(js), &body)
		status = 0
		if v, ok := body["status"].(float64); ok {
			status = int(v)
		}
		if status != http.StatusServiceUnavailable || body["state"] != "failed" || !strings.Contains(fmt.Sprint(body["error"]), "time limit") {
			t.Fatalf("%d %v, want a failed job (503) naming the time limit", status, body)
		}
		if alive(t, pidFile) {
			t.Error("the worker's child outlived the time limit")
		}
		if l := leftovers(t, root); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
		if _, err := os.Stat(filepath.Join(root, "slow.tif")); err == nil {
			t.Error("a partial slow.tif was published")
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		os.Remove(pidFile)
		root := t.TempDir()
		cfg := config.Default()
		cfg.Root, cfg.AdminToken, cfg.CacheMemory = root, token, 0
		cfg.IngestCommand = []string{os.Args[0], workerArg}
		a, srv := apptest.Serve(t, cfg)
		status, _ := post(t, srv.URL+"/admin/images?name=slow.png", token, "image/png", bytes.NewReader(img))
		if status != http.StatusAccepted {
			t.Fatalf("upload: %d", status)
		}
		waitFor(t, pidFile)
		a.Close()
		if alive(t, pidFile) {
			t.Error("the worker's child outlived the shutdown")
		}
		if l := leftovers(t, root); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
	})
}

// TestUploadNameCollides: an upload whose identifier without extension
// would name an existing image too is refused with 409 (issue 14 item 9):
// uploading a.png next to a.png made a.tif, and /iiif/3/a/ then answered
// 404 "ambiguous" for both.
func TestUploadNameCollides(t *testing.T) {
	root := t.TempDir()
	img := pngBytes(t, 16, 16)
	os.WriteFile(filepath.Join(root, "a.png"), img, 0o644)
	os.WriteFile(filepath.Join(root, "b.JPG"), img, 0o644)
	os.WriteFile(filepath.Join(root, "c.txt"), []byte("notes"), 0o644)
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.WriteFile(filepath.Join(root, "d", "info.json"), []byte("{}"), 0o644)
	srv := server(t, root, nil)
	for _, name := range []string{"a.png", "a.jpg", "b.png", "d.png"} {
		status, out := post(t, srv.URL+"/admin/images?wait=1&name="+name, token, "image/png", bytes.NewReader(img))
		msg, _ := out["error"].(string)
		if stem := strings.TrimSuffix(strings.TrimSuffix(name, ".png"), ".jpg"); status != http.StatusConflict || !strings.Contains(msg, fmt.Sprintf("%q", stem)) {
			t.Errorf("%s: %d %v, want 409 naming the image", name, status, out)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a.tif")); err == nil {
		t.Error("a.tif was made next to a.png")
	}
	if res, _ := get(t, srv.URL+"/iiif/3/a/info.json"); res.StatusCode != 200 {
		t.Errorf("/iiif/3/a/info.json: %d", res.StatusCode)
	}
	// A name that only a file that is not an image shares is free.
	if status, out := post(t, srv.URL+"/admin/images?wait=1&name=c.png", token, "image/png", bytes.NewReader(img)); status != http.StatusCreated {
		t.Errorf("c.png: %d %v, want 201", status, out)
	}
}

// TestForwardedHeadersUntrusted: X-Forwarded-* headers are anyone's to
// send (issue 14 item 6). Pages load their scripts and styles by same-
// origin relative URLs whatever the base URL, so that no header can make
// the upload page (where the admin token is typed) load a script from
// elsewhere; and the headers count for ids only with --trust-forwarded,
// from any peer or from the listed proxies. --base-url wins over all.
func TestForwardedHeadersUntrusted(t *testing.T) {
	evil := []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Prefix", "/x", "X-Forwarded-Proto", "https"}
	scriptSrc := regexp.MustCompile(`(?:src|href|action|data-base|data-prefix)="([^"]*)"`)
	for _, tc := range []struct {
		name    string
		edit    func(*config.Config)
		trusted bool // the forwarded host makes the ids
	}{
		{"default", nil, false},
		{"other proxies", func(c *config.Config) { c.TrustForwarded = "10.0.0.0/8, 192.0.2.7" }, false},
		{"any peer", func(c *config.Config) { c.TrustForwarded = "true" }, true},
		{"this peer", func(c *config.Config) { c.TrustForwarded = "127.0.0.1" }, true},
		{"base url", func(c *config.Config) { c.TrustForwarded = "true"; c.BaseURL = "https://images.example.org/iiif-root" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, "", tc.edit)
			for _, page := range []struct{ path, root string }{{"/upload", "."}, {"/view/julia.jpg", ".."}, {"/", "."}} {
				res, body := get(t, srv.URL+page.path, evil...)
				if res.StatusCode != 200 {
					t.Fatalf("%s: %d", page.path, res.StatusCode)
				}
				for _, m := range scriptSrc.FindAllStringSubmatch(body, -1) {
					u := m[1]
					if strings.Contains(u, "/assets/") && !strings.HasPrefix(u, page.root+"/assets/") {
						t.Errorf("%s loads %s, want a relative %s/assets/ URL", page.path, u, page.root)
					}
				}
				if strings.Contains(page.path, "upload") && strings.Contains(body, "evil.example") && !tc.trusted {
					t.Errorf("%s names the forwarded host", page.path)
				}
			}
			res, body := get(t, srv.URL+"/iiif/3/julia.jpg/info.json", evil...)
			if res.StatusCode != 200 {
				t.Fatalf("info.json: %d", res.StatusCode)
			}
			if got := strings.Contains(body, "https://evil.example/x/iiif/3/julia.jpg"); got != tc.trusted {
				t.Errorf("info.json id from the forwarded headers: %v, want %v: %.300s", got, tc.trusted, body)
			}
			if tc.edit != nil && strings.Contains(tc.name, "base") && !strings.Contains(body, "https://images.example.org/iiif-root/iiif/3/julia.jpg") {
				t.Errorf("--base-url not used: %.300s", body)
			}
			vary := strings.Join(res.Header.Values("Vary"), ",")
			if strings.Contains(vary, "X-Forwarded") != tc.trusted {
				t.Errorf("Vary %q", vary)
			}
			req, _ := http.NewRequest("GET", srv.URL+"/iiif/3/julia.jpg", nil)
			for i := 0; i < len(evil); i += 2 {
				req.Header.Set(evil[i], evil[i+1])
			}
			res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if loc := res.Header.Get("Location"); strings.Contains(loc, "evil.example") != tc.trusted {
				t.Errorf("303 to %q", loc)
			}
		})
	}
}
