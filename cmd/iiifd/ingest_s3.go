package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/progress"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/s3"
)

// s3Target is the destination of an ingest into S3: built locally in a
// temporary directory, then uploaded.
type s3Target struct {
	bucket *s3.Source
	key    string
	tmp    string
	local  string
}

// uploadReadTimeout bounds one request of an upload to a bucket.
const uploadReadTimeout = 60 * time.Second

func newS3Target(ctx context.Context, dst string) (*s3Target, error) {
	bucket, key, err := s3.ParseURL(dst)
	if err != nil {
		return nil, err
	}
	key = path.Clean("/" + key)[1:]
	if key == "" || !source.ValidKey(key) {
		return nil, fmt.Errorf("%s: want s3://BUCKET/KEY with a key", dst)
	}
	// The store settings the server reads with, but for one request's
	// time: a part of a multi-gigabyte upload may take longer to send
	// than a read of a tile.
	st := config.Default().Stores
	st.ReadTimeout = max(st.ReadTimeout, uploadReadTimeout)
	src, err := app.Bucket(ctx, st, "s3://"+bucket)
	if err != nil {
		return nil, err
	}
	exists, err := src.Exists(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dst, err)
	}
	if exists {
		return nil, fmt.Errorf("%s already exists", dst)
	}
	tmp, err := os.MkdirTemp("", "iiifd-ingest-")
	if err != nil {
		return nil, err
	}
	return &s3Target{bucket: src, key: key, tmp: tmp, local: filepath.Join(tmp, path.Base(key))}, nil
}

// Send uploads what was built.
func (t *s3Target) Send(ctx context.Context, bar *progress.Reporter) error {
	st, err := os.Stat(t.local)
	if err != nil {
		return err
	}
	report := func(done, total int) {
		if bar != nil {
			bar.Update(int64(done), int64(total))
		}
	}
	defer func() {
		if bar != nil {
			bar.Done()
		}
	}()
	if st.IsDir() {
		err = t.bucket.PutTree(ctx, t.key, t.local, 16, report)
	} else {
		err = t.bucket.PutFile(ctx, t.key, t.local)
		report(1, 1)
	}
	if err != nil {
		// The store's words and where they arose (which part, which
		// file), not only the public message of the fault.
		return fmt.Errorf("upload: %s", reason(err))
	}
	return nil
}

// Close removes the local build.
func (t *s3Target) Close() { os.RemoveAll(t.tmp) }
