package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// TestIngestToS3 ingests into a real S3 server (versitygw), configured
// through the AWS environment, as a pyramidal TIFF and as a tile
// directory, and refuses to overwrite.
func TestIngestToS3(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("ingest")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_REGION", s3test.Region)
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint())
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
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

func TestCheckRemoteRoot(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check", "--root", "s3://bucket/x"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "local --root") {
		t.Errorf("check of a bucket: exit %d %s", code, stderr.String())
	}
}
