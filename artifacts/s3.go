package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"vidmatte"
)

// S3Options locate a bucket of an S3-compatible object store.
type S3Options struct {
	Endpoint  string // host:port
	Bucket    string
	Prefix    string // prepended to every key ("" or ending in "/")
	Region    string // default us-east-1
	Secure    bool   // HTTPS
	AccessKey string // "" takes AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment
	SecretKey string
	// PartSize is the size of one part of a multipart upload: what one
	// Put holds in memory at most (default 16 MiB, S3's minimum is 5 MiB).
	PartSize uint64
}

// ParseS3URL reads s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R&secure=true|false.
func ParseS3URL(raw string) (S3Options, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return S3Options{}, fmt.Errorf("artifacts: %q is not s3://BUCKET?endpoint=HOST:PORT", raw)
	}
	q := u.Query()
	o := S3Options{Bucket: u.Host, Endpoint: q.Get("endpoint"), Region: q.Get("region"), Secure: true}
	if p := strings.Trim(u.Path, "/"); p != "" {
		o.Prefix = p + "/"
	}
	if o.Endpoint == "" {
		return S3Options{}, fmt.Errorf("artifacts: %q names no endpoint (?endpoint=HOST:PORT)", raw)
	}
	if s := q.Get("secure"); s != "" {
		if o.Secure, err = strconv.ParseBool(s); err != nil {
			return S3Options{}, fmt.Errorf("artifacts: secure=%q is not true or false", s)
		}
	}
	for k := range q {
		switch k {
		case "endpoint", "region", "secure":
		default:
			return S3Options{}, fmt.Errorf("artifacts: unknown s3 URL parameter %q", k)
		}
	}
	return o, nil
}

// S3 keeps objects in a bucket of an S3-compatible store (through
// minio-go). A Put is one PUT or a multipart upload of PartSize parts, so
// it is atomic and memory stays bounded whatever the object's size.
type S3 struct {
	opts   S3Options
	client *minio.Client
}

// NewS3 returns the store of the bucket; it checks the bucket exists.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.PartSize == 0 {
		o.PartSize = 16 << 20
	}
	creds := credentials.NewEnvAWS()
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	}
	c, err := minio.New(o.Endpoint, &minio.Options{Creds: creds, Secure: o.Secure, Region: o.Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	s := &S3{opts: o, client: c}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, s.error(err, "bucket "+o.Bucket)
	}
	if !ok {
		return nil, vidmatte.Errorf(vidmatte.CodeUnavailable, "artifacts: no bucket %s at %s", o.Bucket, o.Endpoint)
	}
	return s, nil
}

// Name says which bucket at which endpoint.
func (s *S3) Name() string {
	scheme := "http"
	if s.opts.Secure {
		scheme = "https"
	}
	return fmt.Sprintf("s3 %s/%s at %s://%s", s.opts.Bucket, strings.TrimSuffix(s.opts.Prefix, "/"), scheme, s.opts.Endpoint)
}

func (s *S3) object(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.opts.Prefix + key, nil
}

// Put uploads the object.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	up, err := s.client.PutObject(ctx, s.opts.Bucket, name, r, size, minio.PutObjectOptions{
		PartSize: s.opts.PartSize, ContentType: "application/octet-stream"})
	if err != nil {
		return Info{}, s.error(err, key)
	}
	if size >= 0 && up.Size != size {
		return Info{}, vidmatte.Errorf(vidmatte.CodeInvalid, "artifacts: %s: stored %d bytes of %d", key, up.Size, size)
	}
	return s.Stat(ctx, key)
}

// Open opens the object (a ranged GET per read after a seek).
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.error(err, key)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, s.error(err, key)
	}
	return &s3Object{Object: obj, info: Info{Key: key, Size: st.Size, ModTime: st.LastModified}}, nil
}

type s3Object struct {
	*minio.Object
	info Info
}

func (o *s3Object) Info() Info { return o.info }

// Stat reads the object's size and time.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.opts.Bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.error(err, key)
	}
	return Info{Key: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// Delete removes the object.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.opts.Bucket, name, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil
		}
		return s.error(err, key)
	}
	return nil
}

// List lists the objects under the prefix, in key order (S3's).
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn returns early
	for o := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.opts.Prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return s.error(o.Err, prefix)
		}
		key := strings.TrimPrefix(o.Key, s.opts.Prefix)
		if err := fn(Info{Key: key, Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

func (s *S3) error(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return vidmatte.Errorf(vidmatte.CodeNotFound, "artifacts: no object %s", what)
	case resp.StatusCode == http.StatusForbidden || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		return vidmatte.Wrap(err, vidmatte.CodeUnavailable, "artifacts: the object store refused the credentials ("+what+")")
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return vidmatte.Wrap(err, vidmatte.CodeUnavailable, "artifacts: the object store cannot be reached ("+what+")")
	}
	return vidmatte.Wrap(err, vidmatte.CodeUnavailable, "artifacts: "+what)
}
