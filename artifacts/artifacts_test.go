package artifacts

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"vidmatte"
	"vidmatte/internal/tests3"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestMain(m *testing.M) { os.Exit(tests3.Run(m)) }

// backends are the stores every conformance test runs against.
func backends(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"local": func(t *testing.T) Store {
			s, err := NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) Store {
			endpoint, bucket := tests3.Bucket(t)
			s, err := NewS3(context.Background(), S3Options{Endpoint: endpoint, Bucket: bucket, Prefix: "node/",
				AccessKey: tests3.AccessKey, SecretKey: tests3.SecretKey, Secure: false, PartSize: 5 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func forEach(t *testing.T, test func(t *testing.T, s Store)) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) { test(t, mk(t)) })
	}
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPutOpenStatDelete(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		data := random(t, 100_000)
		info, err := s.Put(ctx, "outputs/job_a/job_a.webm", bytes.NewReader(data), int64(len(data)))
		if err != nil || info.Size != int64(len(data)) || info.Key != "outputs/job_a/job_a.webm" || info.ModTime.IsZero() {
			t.Fatalf("put: %+v %v", info, err)
		}
		obj, err := s.Open(ctx, "outputs/job_a/job_a.webm")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(got, data) || obj.Info().Size != int64(len(data)) {
			t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(data))
		}
		// A range: seek, read.
		if _, err := obj.Seek(99_990, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		tail, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(tail, data[99_990:]) {
			t.Fatalf("range read %d bytes (%v)", len(tail), err)
		}
		obj.Close()
		// Replacing is whole.
		data2 := random(t, 10)
		if _, err := s.Put(ctx, "outputs/job_a/job_a.webm", bytes.NewReader(data2), -1); err != nil {
			t.Fatal(err)
		}
		if st, err := s.Stat(ctx, "outputs/job_a/job_a.webm"); err != nil || st.Size != 10 {
			t.Fatalf("stat after replace: %+v %v", st, err)
		}
		if err := s.Delete(ctx, "outputs/job_a/job_a.webm"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "outputs/job_a/job_a.webm"); err != nil {
			t.Fatalf("deleting a missing object: %v", err)
		}
		for _, err := range []error{statErr(s, "outputs/job_a/job_a.webm"), openErr(s, "outputs/job_a/job_a.webm"), openErr(s, "never/was")} {
			if vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
				t.Fatalf("missing object: %v", err)
			}
		}
	})
}

func statErr(s Store, key string) error {
	_, err := s.Stat(context.Background(), key)
	return err
}

func openErr(s Store, key string) error {
	o, err := s.Open(context.Background(), key)
	if err == nil {
		o.Close()
	}
	return err
}

// A large object of unknown size is streamed in parts (the S3 part size
// is 5 MiB here), and comes back whole.
func TestPutLargeUnknownSize(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		data := random(t, 12<<20)
		info, err := s.Put(context.Background(), "uploads/big.mp4", io.MultiReader(bytes.NewReader(data)), -1)
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("put: %+v %v", info, err)
		}
		path := filepath.Join(t.TempDir(), "big.mp4")
		if err := Download(context.Background(), s, "uploads/big.mp4", path); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, data) {
			t.Fatalf("downloaded %d bytes, want %d", len(got), len(data))
		}
	})
}

// failingReader fails after some bytes: a Put that cannot finish leaves
// the old object, or none.
type failingReader struct {
	data []byte
	n    int
}

var errBroken = errors.New("the client went away")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n >= len(r.data) {
		return 0, errBroken
	}
	n := copy(p, r.data[r.n:])
	r.n += n
	return n, nil
}

func TestFailedPutLeavesTheOldObject(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		old := []byte("the old object")
		if _, err := s.Put(ctx, "uploads/vid_x.mp4", bytes.NewReader(old), int64(len(old))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "uploads/vid_x.mp4", &failingReader{data: random(t, 6<<20)}, -1); err == nil {
			t.Fatal("a put of a broken stream succeeded")
		}
		if _, err := s.Put(ctx, "uploads/vid_y.mp4", &failingReader{data: random(t, 1000)}, 5000); err == nil {
			t.Fatal("a put of a broken stream succeeded")
		}
		obj, err := s.Open(ctx, "uploads/vid_x.mp4")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if got, _ := io.ReadAll(obj); !bytes.Equal(got, old) {
			t.Fatalf("after a failed put: %q", got)
		}
		if err := statErr(s, "uploads/vid_y.mp4"); vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
			t.Fatalf("a failed first put left an object: %v", err)
		}
		var keys []string
		if err := s.List(ctx, "", func(in Info) error { keys = append(keys, in.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != "uploads/vid_x.mp4" {
			t.Fatalf("objects after failed puts: %v", keys)
		}
	})
}

func TestListByPrefix(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, k := range []string{"uploads/b.mp4", "uploads/a.mp4", "outputs/job_1/job_1.webm", "outputs/job_2/job_2.mov", "backgrounds/x.png"} {
			if _, err := s.Put(ctx, k, bytes.NewReader([]byte(k)), int64(len(k))); err != nil {
				t.Fatal(err)
			}
		}
		list := func(prefix string) []string {
			var keys []string
			if err := s.List(ctx, prefix, func(in Info) error {
				if in.Size != int64(len(in.Key)) {
					t.Errorf("%s: size %d", in.Key, in.Size)
				}
				keys = append(keys, in.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return keys
		}
		if got := list("uploads/"); len(got) != 2 || got[0] != "uploads/a.mp4" || got[1] != "uploads/b.mp4" {
			t.Fatalf("uploads: %v", got)
		}
		if got := list("outputs/job_2"); len(got) != 1 || got[0] != "outputs/job_2/job_2.mov" {
			t.Fatalf("outputs/job_2: %v", got)
		}
		if got := list(""); len(got) != 5 {
			t.Fatalf("all: %v", got)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.List(ctx, "", func(Info) error { n++; return stop }); err != stop || n != 1 {
			t.Fatalf("an early stop: %v after %d", err, n)
		}
	})
}

func TestBadKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		for _, k := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "sp ace", "a\x00b"} {
			if _, err := s.Put(context.Background(), k, bytes.NewReader(nil), 0); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
				t.Errorf("put %q: %v", k, err)
			}
			if err := openErr(s, k); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
				t.Errorf("open %q: %v", k, err)
			}
		}
	})
}

// Concurrent puts of one key: every reader sees one whole version.
func TestConcurrentPutsAreAtomic(t *testing.T) {
	forEach(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		versions := [][]byte{bytes.Repeat([]byte("a"), 300_000), bytes.Repeat([]byte("b"), 300_000)}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := versions[i%2]
				if _, err := s.Put(ctx, "outputs/job_c/job_c.webm", bytes.NewReader(v), int64(len(v))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		obj, err := s.Open(ctx, "outputs/job_c/job_c.webm")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		got, _ := io.ReadAll(obj)
		if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
			t.Fatalf("a mixed object of %d bytes", len(got))
		}
	})
}

func TestS3Unreachable(t *testing.T) {
	_, err := NewS3(context.Background(), S3Options{Endpoint: "127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "b"})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnavailable {
		t.Fatalf("unreachable: %v", err)
	}
	endpoint, _ := tests3.Bucket(t)
	_, err = NewS3(context.Background(), S3Options{Endpoint: endpoint, Bucket: "no-such-bucket", AccessKey: tests3.AccessKey, SecretKey: tests3.SecretKey})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnavailable {
		t.Fatalf("missing bucket: %v", err)
	}
	_, err = NewS3(context.Background(), S3Options{Endpoint: endpoint, Bucket: "no-such-bucket", AccessKey: tests3.AccessKey, SecretKey: "wrong"})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnavailable {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestParseS3URL(t *testing.T) {
	o, err := ParseS3URL("s3://media/vidmatte/prod?endpoint=s3.local:9000&region=eu-west-1&secure=false")
	if err != nil || o.Bucket != "media" || o.Prefix != "vidmatte/prod/" || o.Endpoint != "s3.local:9000" || o.Region != "eu-west-1" || o.Secure {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []string{"http://x", "s3://", "s3://b", "s3://b?endpoint=h:1&secure=maybe", "s3://b?endpoint=h:1&color=red"} {
		if _, err := ParseS3URL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// Files answer a health check: local files always, an object store when
// it is reachable.
func TestFilesPing(t *testing.T) {
	ctx := context.Background()
	local, _ := NewFiles(nil, "")
	if err := local.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	endpoint, bucket := tests3.Bucket(t)
	s, err := NewS3(ctx, S3Options{Endpoint: endpoint, Bucket: bucket, AccessKey: tests3.AccessKey, SecretKey: tests3.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFiles(s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Ping(ctx); err != nil {
		t.Fatalf("a reachable store: %v", err)
	}
	gone := *s
	gone.client, _ = minio.New("127.0.0.1:1", &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), BucketLookup: minio.BucketLookupPath})
	f2, _ := NewFiles(&gone, t.TempDir())
	if err := f2.Ping(ctx); vidmatte.ErrorCode(err) != vidmatte.CodeUnavailable {
		t.Fatalf("an unreachable store: %v", err)
	}
}
