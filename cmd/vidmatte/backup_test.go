package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vidmatte/store"
)

// vidmatte backup copies the store of a running daemon into a file that
// opens as the same store; it never overwrites a file, refuses a data dir
// without a database, and sends a PostgreSQL store to pg_dump.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := runCmd(t, "keys", "create", "--data", dir, "--name", "backup", "--credits", "7")
	secret := strings.TrimSpace(out)
	startDaemon(t, dir, time.Minute, nil) // the daemon runs meanwhile

	dst := filepath.Join(t.TempDir(), "vidmatte-backup.db")
	stdout, stderr, code := runCmd(t, "backup", "--data", dir, dst)
	if code != 0 || !strings.Contains(stdout, "bytes") {
		t.Fatalf("backup: exit %d: %s %s", code, stdout, stderr)
	}
	db, err := store.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.AuthenticateKey(context.Background(), secret)
	db.Close()
	if err != nil || k.Name != "backup" {
		t.Fatalf("the key in the backup: %+v %v", k, err)
	}

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backup", "--data", dir, dst}, 1, "exists"},
		{[]string{"backup", "--data", t.TempDir(), filepath.Join(t.TempDir(), "x.db")}, 1, "no database"},
		{[]string{"backup", "--store", "postgres://vm:hunter2@db.internal/vidmatte", filepath.Join(t.TempDir(), "x.db")}, 1, "pg_dump"},
		{[]string{"backup", "--data", dir}, 2, "one output file"},
	} {
		_, stderr, code := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, %q; want %d mentioning %q", c.args, code, stderr, c.code, c.msg)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("the password is printed: %s", stderr)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("the backup folder holds %v", entries)
	}
}
