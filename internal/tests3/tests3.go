// Package tests3 runs a real S3-compatible server for tests: versitygw (Apache-2.0),
// built by scripts/setup into $VIDMATTE_HOME/bin, serving a temporary folder over the S3
// API on a free loopback port, with one bucket per test.
package tests3

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"vidmatte/internal/freeport"
	"vidmatte/internal/home"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials of the test server's root user.
const (
	AccessKey = "vidmatte-test"
	SecretKey = "vidmatte-test-secret-key"
)

var (
	mu     sync.Mutex
	server *instance
	seq    atomic.Int64
)

type instance struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	dir      string
	Endpoint string
	client   *minio.Client
}

// Binary is the versitygw program scripts/setup installs.
func Binary() string {
	return filepath.Join(home.Dir(), "bin", "versitygw")
}

// Run runs a package's tests and stops the server they started: call it
// from TestMain as os.Exit(tests3.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the package's server, if one was started (for a TestMain
// that runs other servers too).
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if server != nil {
		server.stop()
		server = nil
	}
}

// Bucket makes a new empty bucket on the package's server (started at the
// first call) and returns the server's endpoint (host:port) and the
// bucket's name. The bucket's objects are the test's own.
func Bucket(t testing.TB) (endpoint, bucket string) {
	t.Helper()
	mu.Lock()
	if server == nil {
		s, err := start()
		if err != nil {
			mu.Unlock()
			t.Fatalf("tests3: starting versitygw: %v", err)
		}
		server = s
	}
	s := server
	mu.Unlock()
	bucket = fmt.Sprintf("test-%d-%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("tests3: make bucket: %v", err)
	}
	return s.Endpoint, bucket
}

func start() (*instance, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("versitygw is not installed (scripts/setup builds it into %s): %w", bin, err)
	}
	dir, err := os.MkdirTemp("", "vidmatte-s3-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		port, err := freeport.Get()
		if err != nil {
			return nil, err
		}
		s := &instance{dir: dir, Endpoint: "127.0.0.1:" + strconv.Itoa(port)}
		s.cmd = exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.Endpoint, "--quiet",
			"posix", "--sidecar", filepath.Join(dir, "meta"), filepath.Join(dir, "data"))
		for _, d := range []string{"meta", "data"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return nil, err
			}
		}
		log, _ := os.Create(filepath.Join(dir, "log"))
		s.cmd.Stdout, s.cmd.Stderr = log, log
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		s.done = make(chan struct{})
		go func() { s.cmd.Wait(); close(s.done) }()
		if err := s.await(); err != nil {
			s.cmd.Process.Kill()
			<-s.done
			out, _ := os.ReadFile(filepath.Join(dir, "log"))
			lastErr = fmt.Errorf("%v: %s", err, out)
			continue
		}
		return s, nil
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// await waits until the server answers S3 requests.
func (s *instance) await() error {
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	s.client = c
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited: %v", s.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if resp := minio.ToErrorResponse(err); resp.StatusCode != 0 && resp.StatusCode != http.StatusServiceUnavailable {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within 30 s", s.Endpoint)
}

func (s *instance) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}
