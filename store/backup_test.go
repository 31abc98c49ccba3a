package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte"
)

// Backup writes a whole, owner-only copy that opens as a store with the
// same keys, jobs and ledger, while the original stays open and writable;
// it never overwrites a file. On PostgreSQL it names pg_dump instead.
func TestBackup(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "backups", "vidmatte-backup.db")
	if testBackend == "postgres" {
		err := db.Backup(ctx, out)
		wantCode(t, err, vidmatte.CodeInvalid)
		if !strings.Contains(err.Error(), "pg_dump") {
			t.Fatalf("the PostgreSQL answer does not name pg_dump: %v", err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("a file was written: %v", err)
		}
		return
	}
	k, secret := newKey(t, db, 50)
	j := createJob(t, db, k.ID, 2.5, true)
	must(t, db.Backup(ctx, out))

	st, err := os.Stat(out)
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", st.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// The original keeps working after the backup.
	createJob(t, db, k.ID, 1, true)

	cp, err := Open(out)
	must(t, err)
	defer cp.Close()
	key, err := cp.AuthenticateKey(ctx, secret)
	must(t, err)
	if key.ID != k.ID {
		t.Fatalf("the copy authenticates %s, want %s", key.ID, k.ID)
	}
	js, err := cp.ListJobs(ctx, k.ID, vidmatte.JobFilter{})
	must(t, err)
	if len(js) != 1 || js[0].ID != j.ID || js[0].Status != vidmatte.StatusQueued {
		t.Fatalf("the copy's jobs: %v", jobIDs(js))
	}
	if got, want := balance(t, cp, k.ID), 47.5; got != want {
		t.Fatalf("the copy's balance %v, want %v", got, want)
	}
	checkLedger(t, cp)

	// An existing file is a conflict and is left as it was.
	before, _ := os.ReadFile(out)
	wantCode(t, db.Backup(ctx, out), vidmatte.CodeConflict)
	after, _ := os.ReadFile(out)
	if string(before) != string(after) {
		t.Fatal("an existing backup was changed")
	}
	wantCode(t, db.Backup(ctx, db.Path()), vidmatte.CodeInvalid)
}
