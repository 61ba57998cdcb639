package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/remote/remotetest"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
	"github.com/iiifd/iiifd/internal/source/sourcetest"
	"github.com/iiifd/iiifd/internal/source/spool"
)

func testPolicy() remote.Policy {
	p := remote.DefaultPolicy()
	p.ConnectTimeout = 300 * time.Millisecond
	p.ReadTimeout = time.Second
	p.Backoff = 10 * time.Millisecond
	p.BreakerCooldown = 200 * time.Millisecond
	return p
}

func newSource(t testing.TB, endpoint, bucket, prefix string, sp *spool.Spool) *Source {
	t.Helper()
	s, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: prefix, Endpoint: endpoint, Region: s3test.Region,
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
		Policy: testPolicy(), Spool: sp,
		Store: ranged.NewStore(ranged.Config{Cache: ranged.NewCache(16 << 20)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	for _, tc := range []struct {
		name   string
		prefix string
		spool  bool
	}{{"bucket root", "", false}, {"prefix and spool", "some/prefix/", true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			sourcetest.Run(t, func(t *testing.T, files map[string][]byte) source.Source {
				n++
				bucket := srv.Bucket(fmt.Sprintf("conf-%d-%d", len(tc.prefix), n))
				put := map[string][]byte{}
				for k, b := range files {
					put[tc.prefix+k] = b
				}
				srv.Put(bucket, put)
				var sp *spool.Spool
				if tc.spool {
					var err error
					if sp, err = spool.New(t.TempDir(), 64<<20); err != nil {
						t.Fatal(err)
					}
				}
				return newSource(t, srv.Endpoint(), bucket, tc.prefix, sp)
			})
		})
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix string
		ok                 bool
	}{
		{"s3://b", "b", "", true},
		{"s3://b/", "b", "", true},
		{"s3://b/p/q", "b", "p/q/", true},
		{"s3://b/p/q/", "b", "p/q/", true},
		{"s3://b/../x", "", "", false},
		{"s3:///p", "", "", false},
		{"http://b/p", "", "", false},
		{"s3://b/p?x", "", "", false},
	} {
		b, p, err := ParseURL(tc.in)
		if (err == nil) != tc.ok || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tc.in, b, p, err)
		}
	}
}

func kind(err error) fault.Kind {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return -1
}

// TestStoreStopped: the S3 server is killed mid-run: reads fail with 503
// within a second or two, the breaker opens, and once the server is back
// reads succeed again.
func TestStoreStopped(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("outage")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	srv.Put(bucket, map[string][]byte{"x.tif": data})
	s := newSource(t, srv.Endpoint(), bucket, "", nil)
	ctx := context.Background()
	obj, err := s.Open(ctx, "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 5000)
	if _, err := obj.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for i := 0; i < 6; i++ {
		_, err := obj.ReadAt(buf, int64(50_000*(i+1)))
		if kind(err) != fault.Unavailable {
			t.Fatalf("read %d with the store down: %v (%v), want 503", i, err, errors.Unwrap(err))
		}
	}
	// What keeps a dead store from costing clients more than a quick 503
	// is the breaker: open after consecutive failures, it refuses reads
	// without trying the store.
	if !s.Backend().Breaker().Open() {
		t.Error("breaker still closed after consecutive failures")
	}
	srv.Restart()
	sourcetest.ReadEventually(t, obj, 700_000, data[700_000:705_000], 5*time.Second)
}

// TestSlowStore: behind a proxy adding 20 ms per request reads work;
// beyond the read timeout they fail with 504 (a 504 is the read timeout's
// doing: without it the read would succeed after the delay).
func TestSlowStore(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("slow")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	srv.Put(bucket, map[string][]byte{"x.tif": data})
	p := remotetest.Start(t, srv.Addr())
	s := newSource(t, "http://"+p.Addr(), bucket, "", nil)
	p.SetDelay(20 * time.Millisecond)
	obj, err := s.Open(context.Background(), "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 5000)
	if _, err := obj.ReadAt(buf, 100); err != nil || !bytes.Equal(buf, data[100:5100]) {
		t.Fatalf("20 ms latency: %v", err)
	}
	p.SetDelay(3 * time.Second)
	if _, err := obj.ReadAt(buf, 500_000); kind(err) != fault.GatewayTimeout {
		t.Errorf("slow store: %v, want 504", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("creds")
	srv.Put(bucket, map[string][]byte{"x.tif": []byte("x")})
	s, err := New(context.Background(), Config{
		Bucket: bucket, Endpoint: srv.Endpoint(), Region: s3test.Region,
		AccessKey: s3test.AccessKey, SecretKey: "wrong-secret-0123456789",
		Policy: testPolicy(), Store: ranged.NewStore(ranged.Config{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), "x.tif"); kind(err) != fault.BadGateway {
		t.Errorf("wrong credentials: %v, want 502", err)
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("s3://bucket/some/prefix")
	f.Add("s3://b/../x")
	f.Fuzz(func(t *testing.T, s string) {
		b, p, err := ParseURL(s)
		if err != nil {
			return
		}
		if b == "" || (p != "" && (!strings.HasSuffix(p, "/") || !source.ValidKey(strings.TrimSuffix(p, "/")))) {
			t.Errorf("ParseURL(%q) = %q, %q", s, b, p)
		}
	})
}

// TestTruncated: a store whose answers are cut short gives 502 after its
// retries, and reads work again once answers are whole.
func TestTruncated(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("truncated")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	srv.Put(bucket, map[string][]byte{"x.tif": data})
	p := remotetest.Start(t, srv.Addr())
	s := newSource(t, "http://"+p.Addr(), bucket, "", nil)
	obj, err := s.Open(context.Background(), "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	// Headers pass, the body is cut: 2 KiB of a 100 KB range.
	p.CutAfter(2048)
	buf := make([]byte, 100_000)
	if _, err := obj.ReadAt(buf, 10); kind(err) != fault.BadGateway {
		t.Errorf("truncated answers: %v, want 502", err)
	}
	p.CutAfter(0)
	time.Sleep(250 * time.Millisecond) // past the breaker's cooldown, if it opened
	if _, err := obj.ReadAt(buf, 10); err != nil || !bytes.Equal(buf, data[10:100_010]) {
		t.Errorf("after the store recovered: %v", err)
	}
}

// TestWalk: every key under the prefix, over several listing pages, and
// nothing outside it; a missing bucket is an error.
func TestWalk(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("walk")
	files := map[string][]byte{"other/x.tif": nil, "p.tif": nil}
	var want []string
	for _, k := range []string{"a.tif", "b/c.jpg", "b/d/info.json", "b/d/full/1,/0/default.jpg", "e.txt"} {
		files["pre/"+k] = []byte(k)
		want = append(want, k)
	}
	srv.Put(bucket, files)
	s, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: "pre", Endpoint: srv.Endpoint(), Region: s3test.Region,
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, Policy: testPolicy(),
		Store: ranged.NewStore(ranged.Config{}), ListPage: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pages atomic.Int64
	s.client = s3.New(s.client.Options(), func(o *s3.Options) {
		o.HTTPClient = answerHook{inner: o.HTTPClient, at: func(req *http.Request, _ *http.Response) {
			if req.URL.Query().Get("list-type") == "2" {
				pages.Add(1)
			}
		}}
	})
	var got []string
	if err := s.Walk(context.Background(), func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Walk: %q, want %q", got, want)
	}
	if n := pages.Load(); n != 3 {
		t.Errorf("5 keys listed 2 a page in %d requests, want 3", n)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Walk(context.Background(), func(string) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Walk stopped by fn: %v after %d keys", err, n)
	}
	missing := newSource(t, srv.Endpoint(), "no-such-bucket", "", nil)
	if err := missing.Walk(context.Background(), func(string) error { return nil }); err == nil {
		t.Error("Walk of a missing bucket: no error")
	}
}

// TestRedirectsNotFollowed: an S3 endpoint's redirect is not followed
// (issue 14 item 5); the SDK's own client follows 307 and 308 to any
// host. The answer is a 502 that says why, and the other host sees no
// request.
func TestRedirectsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Length", "1")
		w.Write([]byte("x"))
	}))
	defer other.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer front.Close()
	s := newSource(t, front.URL, "bucket", "", nil)
	obj, err := s.Open(context.Background(), "x.tif")
	if err == nil {
		obj.Close()
		t.Fatal("opened through a redirect")
	}
	if status, msg := fault.Status(err); status != http.StatusBadGateway || !strings.Contains(msg, "redirect") {
		t.Errorf("%d %q, want 502 saying redirect", status, msg)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}
