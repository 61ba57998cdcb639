package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/remote"
)

// Upload sizes: files up to multipartAbove go in one PutObject, larger
// ones in parts of partSize (S3's least is 5 MiB), partConcurrency at
// once. Variables for the tests.
var (
	multipartAbove  int64 = 64 << 20
	partSize        int64 = 16 << 20
	partConcurrency       = 4
)

// Exists reports whether key (under the prefix) or anything under key/
// is stored.
func (s *Source) Exists(ctx context.Context, key string) (bool, error) {
	// Two listings: keys sort bytewise, so "photo.jpg" and "photo.png"
	// come before "photo/..." and one listing of "photo" could miss it.
	full := s.prefix + key
	var found bool
	err := s.Backend().Do(ctx, 0, func(ctx context.Context) error {
		keys, err := accessor{s}.List(ctx, full, 1)
		if err != nil {
			return err
		}
		if len(keys) == 1 && keys[0] == full {
			found = true
			return nil
		}
		keys, err = accessor{s}.List(ctx, full+"/", 1)
		found = len(keys) > 0
		return err
	})
	return found, err
}

// PutFile stores the local file at key (under the prefix).
func (s *Source) PutFile(ctx context.Context, key, file string) error {
	if !source.ValidKey(key) {
		return fmt.Errorf("s3: %q is not a valid key", key)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	full := s.prefix + key
	if st.Size() <= multipartAbove {
		return s.Backend().Do(ctx, remote.TransferTimeout(st.Size()), func(ctx context.Context) error {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &s.bucket, Key: &full, ContentLength: aws.Int64(st.Size()),
				Body: io.NewSectionReader(f, 0, st.Size()), ContentType: aws.String(contentType(key)),
			})
			return storeError("PutObject", err)
		})
	}
	return s.putMultipart(ctx, full, f, st.Size())
}

func (s *Source) putMultipart(ctx context.Context, full string, f *os.File, size int64) (err error) {
	var id *string
	err = s.Backend().Do(ctx, 0, func(ctx context.Context) error {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: &s.bucket, Key: &full, ContentType: aws.String(contentType(full)),
		})
		if err != nil {
			return storeError("CreateMultipartUpload", err)
		}
		id = out.UploadId
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Leave no orphaned parts behind (they are billed).
			s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &full, UploadId: id})
		}
	}()
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	errs := make([]error, n)
	sem := make(chan struct{}, partConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		off := int64(i) * partSize
		length := min(partSize, size-off)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			num := int32(i + 1)
			errs[i] = s.Backend().Do(ctx, remote.TransferTimeout(length), func(ctx context.Context) error {
				out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: &s.bucket, Key: &full, UploadId: id, PartNumber: &num,
					ContentLength: aws.Int64(length), Body: io.NewSectionReader(f, off, length),
				})
				if err != nil {
					return storeError("UploadPart", err)
				}
				parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.Backend().Do(ctx, 0, func(ctx context.Context) error {
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: &full, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		return storeError("CompleteMultipartUpload", err)
	})
}

// PutTree stores every file under the local directory dir at key/PATH,
// workers at a time. A tile pyramid's info.json goes last, once every
// tile is stored: readers that find the info.json find the tiles too.
func (s *Source) PutTree(ctx context.Context, key, dir string, workers int, progress func(done, total int)) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(files)
	var last []string
	files = slices.DeleteFunc(files, func(f string) bool {
		if path.Base(f) == "info.json" {
			last = append(last, f)
			return true
		}
		return false
	})
	total := len(files) + len(last)
	done := 0
	var mu sync.Mutex
	put := func(batch []string) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		work := make(chan string)
		var wg sync.WaitGroup
		for w := 0; w < max(workers, 1); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range work {
					if err := s.PutFile(ctx, key+"/"+f, filepath.Join(dir, filepath.FromSlash(f))); err != nil {
						cancel(fmt.Errorf("%s: %w", f, err))
						continue
					}
					mu.Lock()
					done++
					if progress != nil {
						progress(done, total)
					}
					mu.Unlock()
				}
			}()
		}
	feed:
		for _, f := range batch {
			select {
			case work <- f:
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		return context.Cause(ctx)
	}
	if err := put(files); err != nil {
		return err
	}
	return put(last)
}

func contentType(key string) string {
	switch path.Ext(key) {
	case ".json":
		return "application/json"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".tif", ".tiff", ".ptif":
		return "image/tiff"
	case ".webp":
		return "image/webp"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}
