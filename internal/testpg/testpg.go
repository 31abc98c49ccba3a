// Package testpg runs a real PostgreSQL server for a package's tests:
// initdb into a fresh folder, pg_ctl on a free loopback port (as the
// postgres user when the tests run as root, since PostgreSQL refuses to run
// as root), one database per test, and the server stopped and its folder
// removed when the package's tests end. It uses Debian's postgresql-15,
// which scripts/setup installs.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"vidmatte/internal/freeport"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's PostgreSQL 15 programs are.
const BinDir = "/usr/lib/postgresql/15/bin"

var (
	mu     sync.Mutex
	server *instance
	dbSeq  atomic.Int64
)

type instance struct {
	dir   string // data folder and socket folder's parent
	port  int
	owner *user.User // nil: the current user
	admin string     // connection string of the postgres database
}

// Run runs a package's tests and stops the server they started, if any:
// call it from TestMain as os.Exit(testpg.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if server != nil {
		if err := server.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testpg:", err)
		}
		server = nil
	}
	return code
}

// Database returns the connection string of a new, empty database on the
// package's server (started at the first call), dropped when the test
// ends. The package's TestMain must call Run.
func Database(t testing.TB) string {
	t.Helper()
	mu.Lock()
	if server == nil {
		s, err := start()
		if err != nil {
			mu.Unlock()
			t.Fatalf("testpg: starting PostgreSQL: %v", err)
		}
		server = s
	}
	s := server
	mu.Unlock()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return s.url(name)
}

func (s *instance) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *instance) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func start() (*instance, error) {
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL 15 is not installed (scripts/setup installs postgresql-15): %w", err)
	}
	s := &instance{}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user of the postgresql-15 package: %w", err)
		}
		s.owner = u
	}
	dir, err := os.MkdirTemp("", "vidmatte-pg-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if err := s.chown(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// A port free now; PostgreSQL fails to start if another process takes
	// it meanwhile, and then a second try picks another.
	var lastErr error
	for range 3 {
		if s.port, err = freeport.Get(); err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c full_page_writes=off -c max_connections=200", s.port, dir)
		out, err := s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			s.admin = s.url("postgres")
			return s, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		lastErr = fmt.Errorf("pg_ctl start: %v: %s %s", err, out, log)
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *instance) stop() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	rmErr := os.RemoveAll(s.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return rmErr
}

// run runs a PostgreSQL program as the server's owner.
func (s *instance) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(BinDir, prog)
	var cmd *exec.Cmd
	if s.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", s.owner.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *instance) chown(dir string) error {
	if s.owner == nil {
		return nil
	}
	uid, err1 := strconv.Atoi(s.owner.Uid)
	gid, err2 := strconv.Atoi(s.owner.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}
