package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/iiifd/iiifd/internal/fault"
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

// PutFile stores the local file at key (under the prefix): in one
// PutObject, or in parts above multipartAbove. Either way the object
// appears whole or not at all.
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
			body := newBody(f, 0, st.Size())
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &s.bucket, Key: &full, ContentLength: aws.Int64(st.Size()),
				Body: body, ContentType: aws.String(contentType(key)),
			})
			return body.check(storeError("PutObject", err))
		})
	}
	return s.putMultipart(ctx, full, f, st.Size())
}

// body is the body of an upload, a section of a local file. It remembers
// a failure to read the file, which is ours, not the store's: such a
// request is not retried and does not count against the breaker.
type body struct {
	*io.SectionReader
	mu  sync.Mutex // the transport may still read while check runs
	err error
}

func newBody(r io.ReaderAt, off, n int64) *body {
	return &body{SectionReader: io.NewSectionReader(r, off, n)}
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.SectionReader.Read(p)
	if err == io.EOF {
		if pos, _ := b.Seek(0, io.SeekCurrent); pos < b.Size() {
			err = fmt.Errorf("%w: the file shrank while it was being uploaded", io.ErrUnexpectedEOF)
		}
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// check returns err, as a local failure if reading the body failed.
func (b *body) check(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.err != nil {
		return remote.Local(fmt.Errorf("reading the file to upload: %w", b.err))
	}
	return err
}

// putMultipart stores size bytes of r at full in parts, partConcurrency
// at once. The first part that fails stops the upload: parts in flight
// are cancelled, no further part is sent, and the upload is aborted, so
// that no object appears and no parts are left stored (and billed).
func (s *Source) putMultipart(ctx context.Context, full string, r io.ReaderAt, size int64) error {
	var id *string
	err := s.Backend().Do(ctx, 0, func(ctx context.Context) error {
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
		return fmt.Errorf("starting the multipart upload of %s: %w", full, err)
	}
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	err = s.putParts(ctx, full, id, r, size, parts)
	if err == nil {
		err = ctx.Err() // gone before the completion: aborted
	}
	if err == nil {
		// Once sent, the completion is seen through whatever becomes of
		// ctx: the store may complete the upload as the caller goes
		// away, and the answer must then be the object's, stored, not
		// the caller's context error. Its attempts stay bounded by the
		// backend's policy (an attempt timeout each, a few retries).
		if err = s.complete(context.WithoutCancel(ctx), full, id, parts, size); err == nil {
			return nil
		}
		err = fmt.Errorf("multipart upload of %s: completing it: %w", full, err)
	}
	// The caller may have gone: the abort must still be sent. Every part
	// request has ended by now, so none is stored after it.
	aerr := s.Backend().Do(context.WithoutCancel(ctx), 0, func(ctx context.Context) error {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &full, UploadId: id})
		if err = storeError("AbortMultipartUpload", err); errors.Is(err, source.ErrNotFound) {
			return nil // already gone
		}
		return err
	})
	if aerr != nil {
		return fmt.Errorf("%w; aborting the upload (id %s) failed too, its parts stay stored until removed: %s", err, aws.ToString(id), fault.Detail(aerr))
	}
	return err
}

// complete completes upload id of full from parts; putMultipart calls it
// with a context the caller's going away does not end. Completing is not
// idempotent: when a store completed the upload but its answer was lost,
// the retry finds no such upload. The object is then looked at: stored
// with the upload's size and a multipart ETag of as many parts, it is the
// upload, completed.
func (s *Source) complete(ctx context.Context, full string, id *string, parts []types.CompletedPart, size int64) error {
	err := s.Backend().Do(ctx, 0, func(ctx context.Context) error {
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: &full, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		return storeError("CompleteMultipartUpload", err)
	})
	if !errors.Is(err, source.ErrNotFound) {
		return err
	}
	var head *s3.HeadObjectOutput
	herr := s.Backend().Do(ctx, 0, func(ctx context.Context) error {
		var err error
		head, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &full})
		return storeError("HeadObject", err)
	})
	if herr == nil && isUpload(head, size, parts) {
		return nil
	}
	return err
}

// isUpload reports whether an object's head is that of the multipart
// upload of size bytes made of parts: its length, and its ETag, which S3
// makes from the parts' own (the MD5 of their MD5s, then "-" and how
// many there are), so that another object of the same length and number
// of parts is not taken for it.
func isUpload(head *s3.HeadObjectOutput, size int64, parts []types.CompletedPart) bool {
	if aws.ToInt64(head.ContentLength) != size {
		return false
	}
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(aws.ToString(p.ETag), `"`))
		if err != nil || len(sum) != md5.Size {
			return false // not an MD5: the store's ETags cannot be checked
		}
		h.Write(sum)
	}
	want := hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
	return strings.Trim(aws.ToString(head.ETag), `"`) == want
}

// putParts sends the parts of upload id, filling parts; it stops at the
// first failure and returns it.
func (s *Source) putParts(ctx context.Context, full string, id *string, r io.ReaderAt, size int64, parts []types.CompletedPart) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(parts)
	sem := make(chan struct{}, partConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // a part failed, or the caller went away
		}
		off := int64(i) * partSize
		length := min(partSize, size-off)
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			num := int32(i + 1)
			err := s.Backend().Do(ctx, remote.TransferTimeout(length), func(ctx context.Context) error {
				body := newBody(r, off, length)
				out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: &s.bucket, Key: &full, UploadId: id, PartNumber: &num,
					ContentLength: aws.Int64(length), Body: body,
				})
				if err != nil {
					return body.check(storeError("UploadPart", err))
				}
				parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
				return nil
			})
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("multipart upload of %s: part %d of %d: %w", full, num, n, err))
			}
		}()
	}
	wg.Wait()
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
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

// detail is err's message with the cause of a fault, which its Error
// leaves out (it is the public message).
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
