package main

import (
	"bytes"
	"context"
	"io"
	iofs "io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// TestIngestToS3 ingests into a real S3 server (versitygw), configured
// through the AWS environment, as a pyramidal TIFF and as a tile
// directory, and refuses to overwrite.
func TestIngestToS3(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("ingest")
	s3test.Env(t, srv.Endpoint())
	src := ingestSource(t, 900, 700)
	ctx := context.Background()
	for _, tc := range []struct{ format, key, check string }{
		{"ptiff", "scans/out.tif", "scans/out.tif"},
		{"tiles", "scans/out", "scans/out/info.json"},
	} {
		var stdout, stderr bytes.Buffer
		dst := "s3://" + bucket + "/" + tc.key
		code := run(ctx, []string{"ingest", "--quiet", "--format", tc.format, "--tile-size", "256", src, dst}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", tc.format, code, stdout.String(), stderr.String())
		}
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &tc.check})
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if tc.format == "ptiff" && !bytes.HasPrefix(b, []byte("II*\x00")) || tc.format == "tiles" && !bytes.Contains(b, []byte(`"width"`)) {
			t.Errorf("%s: stored %d bytes that are not the output", tc.format, len(b))
		}
		stderr.Reset()
		if code := run(ctx, []string{"ingest", "--quiet", "--format", tc.format, src, dst}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "already exists") {
			t.Errorf("%s: second ingest to the same key: exit %d %s", tc.format, code, stderr.String())
		}
	}
}

// TestCheckRemoteRoot: a bucket root is listed and its images checked
// (a tile pyramid as one image, hidden keys and other files left out); a
// web server root cannot be listed, which check says, with exit 2, and
// checks the identifiers named on the command line instead; rules send
// each listed image to the root the server would open it in.
func TestCheckRemoteRoot(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("check")
	s3test.Env(t, srv.Endpoint())
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range []string{"julia.jpg", "mandelbrot.tif", "zoneplate.jp2", "testchart.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files["coll/"+name] = b
		files["coll/sub/"+name] = b
	}
	julia := files["coll/julia.jpg"]
	files["coll/bad.jpg"] = []byte("not a jpeg")
	files["coll/.hidden/x.jpg"] = julia
	files["coll/notes.txt"] = []byte("text")
	files["elsewhere/y.jpg"] = []byte("outside the prefix")
	// A tile pyramid: checked as "coll/pyr", from its info.json.
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"ingest", "--quiet", "--format", "tiles", "--tile-size", "256",
		filepath.Join(dir, "julia.jpg"), filepath.Join(dir, "pyr")}, &out, &errOut); code != 0 {
		t.Fatalf("ingest: %d %s", code, errOut.String())
	}
	filepath.WalkDir(filepath.Join(dir, "pyr"), func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files["coll/"+filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return err
	})
	srv.Put(bucket, files)

	root := "s3://" + bucket + "/coll"
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", root, "--jobs", "2"}, &out, &errOut); code != 1 {
		t.Fatalf("check of a bucket with a broken image: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if want := "FAIL bad.jpg: "; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if want := "checked 10 images under " + root + ": 9 ok, 1 failed"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	// Listed three keys a page, the pyramid's tiles, before and after
	// its info.json, and the images around them span many pages: the
	// output is the same.
	whole := out.String()
	checkListPage = 3
	out.Reset()
	errOut.Reset()
	code := run(ctx, []string{"check", "--root", root, "--jobs", "2"}, &out, &errOut)
	checkListPage = 0
	if code != 1 || out.String() != whole {
		t.Errorf("check listing 3 keys a page: exit %d, output\n%s\nwant\n%s%s", code, out.String(), whole, errOut.String())
	}

	// Identifiers named on the command line are checked alone.
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", root, "pyr", "sub/mandelbrot.tif"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "checked 2 images given: 2 ok") {
		t.Errorf("check of named images: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", root, "missing.jpg", "bad.jpg"}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "FAIL missing.jpg: ") {
		t.Errorf("check of a missing image: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// Rules: "sub/**" is served from the bucket, everything else from a
	// local folder; only the bucket's sub/ and the folder's other images
	// are checked.
	local := t.TempDir()
	os.MkdirAll(filepath.Join(local, "sub"), 0o755)
	os.WriteFile(filepath.Join(local, "a.jpg"), julia, 0o644)
	os.WriteFile(filepath.Join(local, "sub", "shadowed.jpg"), []byte("never served"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", local, "--roots", "sub/**=" + root}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "checked 5 images under "+root+", "+local+": 5 ok") {
		t.Errorf("check with rules: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// With a key layout, stored keys are turned back into identifiers.
	srv.Put(bucket, map[string][]byte{"laid/3972/b1/3972b16287e5.jpg": julia, "laid/abcd/ef/abcdef01.jpg": []byte("broken")})
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", "s3://" + bucket + "/laid", "--key-layout", "hash:4,2"}, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "FAIL abcdef01.jpg: ") || !strings.Contains(out.String(), "checked 2 images") {
		t.Errorf("check with a key layout: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// A missing bucket is an error, not an empty collection.
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", "s3://no-such-bucket/x"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "listing s3://no-such-bucket/x") {
		t.Errorf("check of a missing bucket: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// TestCheckWebRoot: a web server cannot be listed: check says so and
// exits 2, unless identifiers are named.
func TestCheckWebRoot(t *testing.T) {
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer web.Close()
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"check", "--root", web.URL + "/"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "cannot be listed") {
		t.Errorf("check of a web server: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"check", "--root", web.URL + "/", "julia.jpg", "mandelbrot.tif"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "checked 2 images given: 2 ok") {
		t.Errorf("check of named images on a web server: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run(ctx, []string{"check", "--root", web.URL + "/", "julia.jpg", "--jobs", "2"}, &out, &errOut); code != 2 {
		t.Errorf("flag after an identifier: exit %d", code)
	}
}
