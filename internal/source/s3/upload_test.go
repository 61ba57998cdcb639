package s3

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

func TestUpload(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("upload")
	s := newSource(t, srv.Endpoint(), bucket, "out/", nil)
	ctx := context.Background()
	multipartAbove, partSize = 6<<20, 5<<20
	defer func() { multipartAbove, partSize = 64<<20, 16<<20 }()

	dir := t.TempDir()
	big := make([]byte, 12<<20+123)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	files := map[string][]byte{
		"big.tif":                       big,
		"pyr/info.json":                 []byte(`{"width":1}`),
		"pyr/0,0,1,1/1,1/0/default.jpg": []byte("tile"),
		"pyr/full/1,1/0/default.jpg":    []byte("full"),
	}
	for k, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	if err := s.PutFile(ctx, "big.tif", filepath.Join(dir, "big.tif")); err != nil {
		t.Fatal(err)
	}
	// Stored in 3 parts: S3 gives such an object the ETag "MD5-OF-MD5S-3".
	head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("out/big.tif")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Errorf("big.tif has ETag %s: not stored in 3 parts", etag)
	}
	var order []int
	if err := s.PutTree(ctx, "pyr", filepath.Join(dir, "pyr"), 4, func(done, total int) { order = append(order, done) }); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 {
		t.Errorf("progress %v", order)
	}
	for k, want := range files {
		obj, err := s.Open(ctx, k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		got := make([]byte, obj.Size)
		if n, _ := obj.ReadAt(got, 0); n != len(want) || !bytes.Equal(got, want) {
			t.Errorf("%s: stored %d bytes, want %d", k, n, len(want))
		}
		obj.Close()
	}
	// Keys that sort before "pyr/..." ("pyr-a", "pyr.png") must not hide
	// the folder from Exists.
	for _, k := range []string{"pyr-a", "pyr.png"} {
		os.WriteFile(filepath.Join(dir, "x"), []byte(k), 0o644)
		if err := s.PutFile(ctx, k, filepath.Join(dir, "x")); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]bool{"pyr": true, "big.tif": true, "py": false, "nothing": false, "pyr-a": true} {
		if got, err := s.Exists(ctx, key); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v", key, got, err)
		}
	}
}

// partFile is a file to upload, in memory, that records which parts were
// read and calls at(part) before each read.
type partFile struct {
	data []byte
	at   func(part int) error

	mu   sync.Mutex
	read map[int]bool
}

func (f *partFile) ReadAt(p []byte, off int64) (int, error) {
	part := int(off/partSize) + 1
	f.mu.Lock()
	f.read[part] = true
	f.mu.Unlock()
	if f.at != nil {
		if err := f.at(part); err != nil {
			return 0, err
		}
	}
	return copy(p, f.data[off:]), nil
}

func (f *partFile) parts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for p := range f.read {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestUploadPartFails: a multipart upload whose part 2 of 6 cannot be
// read, or whose caller goes away during part 2, stops there: no later
// part is sent, the upload is aborted, no object appears, and the error
// says what failed.
func TestUploadPartFails(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("partfail")
	s := newSource(t, srv.Endpoint(), bucket, "", nil)
	partSize, partConcurrency = 5<<20, 1
	defer func() { partSize, partConcurrency = 16<<20, 4 }()
	data := make([]byte, 6*partSize-10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}

	diskErr := errors.New("input/output error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		at   func(part int) error
		want func(error) bool
	}{
		{"unreadable part", context.Background(), func(part int) error {
			if part == 2 {
				return diskErr
			}
			return nil
		}, func(err error) bool {
			return errors.Is(err, diskErr) && strings.Contains(err.Error(), "part 2 of 6")
		}},
		{"caller gone", ctx, func(part int) error {
			if part == 2 {
				cancel()
			}
			return nil
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-") + ".tif"
			f := &partFile{data: data, at: tc.at, read: map[int]bool{}}
			err := s.putMultipart(tc.ctx, key, f, int64(len(data)))
			if !tc.want(err) {
				t.Errorf("upload: %v", err)
			}
			if got := f.parts(); !slices.Equal(got, []int{1, 2}) {
				t.Errorf("parts read: %v, want [1 2] (stop at the failure)", got)
			}
			if _, err := s.Open(context.Background(), key); !errors.Is(err, source.ErrNotFound) {
				t.Errorf("object after a failed upload: %v", err)
			}
			ups, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("%d uploads left pending after a failed upload", len(ups.Uploads))
			}
		})
	}
	// With the input readable again, the upload goes through.
	f := &partFile{data: data, read: map[int]bool{}}
	if err := s.putMultipart(context.Background(), "ok.tif", f, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(context.Background(), "ok.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Size != int64(len(data)) {
		t.Errorf("stored %d bytes, want %d", obj.Size, len(data))
	}
}

// TestCompleteRetried: completing is safe to retry. Stores answer a
// retried completion either as a success (versitygw) or, once the upload
// is gone, with NoSuchUpload (AWS); the object then tells whether it is
// the upload (isUpload).
func TestCompleteRetried(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("complete")
	s := newSource(t, srv.Endpoint(), bucket, "", nil)
	ctx := context.Background()
	full := "done.tif"
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &full})
	if err != nil {
		t.Fatal(err)
	}
	data := append(bytes.Repeat([]byte("iiif"), 5<<18), bytes.Repeat([]byte("d"), 5<<20)...) // two different 5 MiB parts
	var parts []types.CompletedPart
	for i, off := 0, 0; off < len(data); i++ {
		end := min(off+5<<20, len(data))
		p, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: &full, UploadId: out.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data[off:end]),
		})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: p.ETag, PartNumber: aws.Int32(int32(i + 1))})
		off = end
	}
	for range 2 {
		if err := s.complete(ctx, full, out.UploadId, parts, int64(len(data))); err != nil {
			t.Fatalf("completion: %v", err)
		}
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &full})
	if err != nil {
		t.Fatal(err)
	}
	swapped := []types.CompletedPart{parts[1], parts[0]}
	for _, tc := range []struct {
		name  string
		size  int64
		parts []types.CompletedPart
		want  bool
	}{
		{"the upload", int64(len(data)), parts, true},
		{"another size", int64(len(data)) + 1, parts, false},
		{"fewer parts", int64(len(data)), parts[:1], false},
		{"other parts", int64(len(data)), swapped, false},
		{"no MD5 ETags", int64(len(data)), []types.CompletedPart{{ETag: aws.String("x")}, {ETag: aws.String("y")}}, false},
	} {
		if got := isUpload(head, tc.size, tc.parts); got != tc.want {
			t.Errorf("%s: isUpload(ETag %s) = %v", tc.name, aws.ToString(head.ETag), got)
		}
	}
}

// answerHook is the S3 client's HTTP client, calling at with each answer
// before the client gets it. When the request's context has ended by
// then, the answer is lost, as the transport loses an answer arriving
// after its caller went away.
type answerHook struct {
	inner s3.HTTPClient
	at    func(req *http.Request, resp *http.Response)
}

func (h answerHook) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.inner.Do(req)
	if err != nil {
		return nil, err
	}
	h.at(req, resp)
	if err := req.Context().Err(); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// TestCompleteCallerGone: the caller of a multipart upload goes away just
// as versitygw answers that it completed the upload. The object is
// stored, whole, so the upload reports success, and nothing is left
// pending.
func TestCompleteCallerGone(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("gone")
	s := newSource(t, srv.Endpoint(), bucket, "", nil)
	partSize = 5 << 20
	defer func() { partSize = 16 << 20 }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var completed atomic.Bool
	s.client = s3.New(s.client.Options(), func(o *s3.Options) {
		o.HTTPClient = answerHook{inner: o.HTTPClient, at: func(req *http.Request, resp *http.Response) {
			if req.Method == http.MethodPost && req.URL.Query().Has("uploadId") && resp.StatusCode == http.StatusOK {
				completed.Store(true)
				cancel()
			}
		}}
	})
	data := make([]byte, 2*partSize+1000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	err := s.putMultipart(ctx, "gone.tif", &partFile{data: data, read: map[int]bool{}}, int64(len(data)))
	if !completed.Load() {
		t.Fatalf("the store never answered a completion (upload: %v)", err)
	}
	if err != nil {
		t.Errorf("upload completed as its caller went away = %v, want success", err)
	}
	obj, oerr := s.Open(context.Background(), "gone.tif")
	if oerr != nil {
		t.Fatalf("the completed object: %v", oerr)
	}
	defer obj.Close()
	got := make([]byte, obj.Size)
	if n, _ := obj.ReadAt(got, 0); n != len(data) || !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes, want the %d uploaded", n, len(data))
	}
	ups, lerr := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d uploads left pending", len(ups.Uploads))
	}
}
