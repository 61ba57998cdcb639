// Package s3 is the S3 source: keys are object keys under a bucket and
// prefix, opened with HeadObject (size, ETag as version, Last-Modified)
// and read with ranged GetObject calls conditioned on that ETag, through
// the shared block cache; Siblings lists with ListObjectsV2. It talks to
// AWS S3 and to S3-compatible stores (MinIO, Ceph, R2, versitygw).
//
// Credentials, region and endpoint follow the AWS conventions, through the
// AWS SDK's default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE with the shared config and
// credentials files, web identity, ECS container and EC2 instance roles,
// and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for a custom endpoint,
// which is then addressed path-style (http://endpoint/bucket/key), as
// S3-compatible stores expect.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// Config describes a bucket and how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended to every key; empty or ending in "/".
	Prefix string
	// Endpoint, Region and the static keys override the AWS default
	// chain when set (tests); leave them empty in production.
	Endpoint             string
	Region               string
	AccessKey, SecretKey string

	Policy remote.Policy
	Store  *ranged.Store
	Spool  *spool.Spool // nil: nothing is downloaded whole
	// ListPage is the most keys one listing request of Walk asks for;
	// zero means S3's most, 1000.
	ListPage int32
}

// Source reads images from a bucket.
type Source struct {
	*remote.Objects
	client   *s3.Client
	bucket   string
	prefix   string
	listPage int32
}

var _ source.Source = (*Source)(nil)

// ParseURL splits s3://BUCKET/PREFIX into the bucket and a prefix that is
// empty or ends in "/".
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/PREFIX URL", s)
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if prefix != "" && !source.ValidKey(strings.TrimSuffix(prefix, "/")) {
		return "", "", fmt.Errorf("%q: the prefix is not a clean relative path", s)
	}
	return u.Host, prefix, nil
}

// New returns the source for cfg. It does not contact the store.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("s3: no block store")
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, listPage: cfg.ListPage}
	s.Objects = remote.New(remote.Config{
		Name: "s3://" + cfg.Bucket, Prefix: cfg.Prefix, Accessor: accessor{s},
		Backend: remote.NewBackend(cfg.Policy), Store: cfg.Store, Spool: cfg.Spool,
	})
	return s, nil
}

func newClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	opts = append(opts,
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(cfg.Policy.Configure)),
		// Retries are ours (remote.Backend), the same for every store.
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	)
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: AWS configuration: %w", err)
	}
	// The SDK's client follows 307 and 308 redirects to any host; ours
	// follows none (see remote.Policy.Client). Its transport is the
	// configured one, custom CA bundle (AWS_CA_BUNDLE) included.
	if bc, ok := ac.HTTPClient.(*awshttp.BuildableClient); ok {
		ac.HTTPClient = &http.Client{Transport: bc.GetTransport(), CheckRedirect: remote.NoRedirects}
	} else {
		return nil, fmt.Errorf("s3: unexpected HTTP client %T", ac.HTTPClient)
	}
	if ac.Region == "" {
		// S3-compatible stores rarely care; AWS redirects to the right
		// region's error, which names it.
		ac.Region = "us-east-1"
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// Custom endpoints (MinIO, Ceph, versitygw) are addressed
		// path-style: their buckets are not DNS names.
		o.UsePathStyle = o.BaseEndpoint != nil
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// accessor is the S3 protocol for remote.Objects.
type accessor struct{ s *Source }

// storeError turns an SDK error into what remote.Backend classifies:
// HTTP statuses as remote.StatusError (404 as source.ErrNotFound),
// everything else (network errors) as it is.
func storeError(op string, err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		code := re.HTTPStatusCode()
		if e := remote.CheckStatus(op, code); e != nil {
			return fmt.Errorf("%w: %s", e, apiCode(err))
		}
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("%w: %s", source.ErrNotFound, op)
	}
	return err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (a accessor) Head(ctx context.Context, key string) (remote.Meta, error) {
	out, err := a.s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &a.s.bucket, Key: &key})
	if err != nil {
		return remote.Meta{}, storeError("HeadObject", err)
	}
	m := remote.Meta{Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		m.ModTime = out.LastModified.UTC()
	}
	return m, nil
}

func (a accessor) get(ctx context.Context, key string, m remote.Meta, rng string) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: &a.s.bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	if m.ETag != "" {
		in.IfMatch = &m.ETag
	}
	out, err := a.s.client.GetObject(ctx, in)
	if err != nil {
		return nil, storeError("GetObject", err)
	}
	return out, nil
}

func (a accessor) Range(ctx context.Context, key string, m remote.Meta, off int64, p []byte) error {
	out, err := a.get(ctx, key, m, fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	if err != nil {
		return err
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength != int64(len(p)) {
		return fmt.Errorf("GetObject: %d bytes for a range of %d", *out.ContentLength, len(p))
	}
	if _, err := io.ReadFull(out.Body, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("GetObject: %w", err)
	}
	return nil
}

func (a accessor) Whole(ctx context.Context, key string, m remote.Meta, w io.Writer) error {
	out, err := a.get(ctx, key, m, "")
	if err != nil {
		return err
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return fmt.Errorf("GetObject: %w", err)
	}
	if n != m.Size {
		return fmt.Errorf("GetObject: %w: %d of %d bytes", io.ErrUnexpectedEOF, n, m.Size)
	}
	return nil
}

func (a accessor) List(ctx context.Context, prefix string, limit int) ([]string, error) {
	out, err := a.s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: &a.s.bucket, Prefix: &prefix, MaxKeys: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, storeError("ListObjectsV2", err)
	}
	keys := make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys, nil
}

// Start opens key with a GetObject of its first n bytes.
func (a accessor) Start(ctx context.Context, key string, n int) (remote.Meta, []byte, error) {
	out, err := a.get(ctx, key, remote.Meta{}, fmt.Sprintf("bytes=0-%d", n-1))
	if err != nil {
		var se *remote.StatusError
		if errors.As(err, &se) && se.Code == 416 {
			// An empty object: ranges of it are not satisfiable.
			m, err := a.Head(ctx, key)
			return m, nil, err
		}
		return remote.Meta{}, nil, err
	}
	defer out.Body.Close()
	var end, size int64
	if out.ContentRange == nil {
		return remote.Meta{}, nil, errors.New("GetObject: no Content-Range for a range")
	}
	if _, err := fmt.Sscanf(*out.ContentRange, "bytes 0-%d/%d", &end, &size); err != nil || end >= size || end >= int64(n) {
		return remote.Meta{}, nil, fmt.Errorf("GetObject: Content-Range %q for bytes 0-%d", *out.ContentRange, n-1)
	}
	data := make([]byte, end+1)
	if _, err := io.ReadFull(out.Body, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return remote.Meta{}, nil, fmt.Errorf("GetObject: %w", err)
	}
	m := remote.Meta{Size: size, ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		m.ModTime = out.LastModified.UTC()
	}
	return m, data, nil
}

// defaultListPage is the most keys one listing request asks for unless
// Config.ListPage says otherwise: S3's most.
const defaultListPage = 1000

// Walk calls fn with every key under the prefix (without it), in the
// store's order (bytewise), one listing page at a time; each page is an
// idempotent request with the backend's retries. It stops at the first
// error, fn's included.
func (s *Source) Walk(ctx context.Context, fn func(key string) error) error {
	page := int32(defaultListPage)
	if s.listPage > 0 {
		page = s.listPage
	}
	var token *string
	for {
		var out *s3.ListObjectsV2Output
		err := s.Backend().Do(ctx, 0, func(ctx context.Context) error {
			var err error
			out, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket: &s.bucket, Prefix: &s.prefix, ContinuationToken: token, MaxKeys: aws.Int32(page),
			})
			return storeError("ListObjectsV2", err)
		})
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || key == "" {
				continue
			}
			if err := fn(key); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		token = out.NextContinuationToken
	}
}
