package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still exists (%v)", path, err)
	}
}

func TestRenameMovesTheWholeFile(t *testing.T) {
	dir := t.TempDir()
	tmp, final := filepath.Join(dir, ".out.partial"), filepath.Join(dir, "out")
	write(t, tmp, "the whole output")
	if err := Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if got := read(t, final); got != "the whole output" {
		t.Fatalf("renamed file holds %q", got)
	}
	gone(t, tmp)
}

func TestRenameReplacesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	tmp, final := filepath.Join(dir, "new"), filepath.Join(dir, "old")
	write(t, final, "stale")
	write(t, tmp, "fresh")
	if err := Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if got := read(t, final); got != "fresh" {
		t.Fatalf("replaced file holds %q", got)
	}
	gone(t, tmp)
}

func TestRenameAcrossFolders(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	tmp, final := filepath.Join(from, "a"), filepath.Join(to, "b")
	write(t, tmp, "moved")
	if err := Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if got := read(t, final); got != "moved" {
		t.Fatalf("moved file holds %q", got)
	}
	gone(t, tmp)
}

func TestRenameErrors(t *testing.T) {
	dir := t.TempDir()

	// A missing source: an error, and nothing appears.
	if err := Rename(filepath.Join(dir, "missing"), filepath.Join(dir, "out")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	gone(t, filepath.Join(dir, "out"))

	// A destination folder that does not exist: an error, and the source
	// stays where it was, whole.
	src := filepath.Join(dir, "src")
	write(t, src, "kept")
	if err := Rename(src, filepath.Join(dir, "no", "such", "out")); err == nil {
		t.Fatal("rename into a missing folder succeeded")
	}
	if got := read(t, src); got != "kept" {
		t.Fatalf("source holds %q after a failed rename", got)
	}

	// A folder is not a file to sync and move.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Rename(sub, filepath.Join(dir, "moved")); err == nil {
		t.Fatal("a folder was renamed as a file")
	}
	if st, err := os.Stat(sub); err != nil || !st.IsDir() {
		t.Fatalf("the folder did not stay: %v", err)
	}
	gone(t, filepath.Join(dir, "moved"))

	// A destination that is a folder is refused by the rename itself.
	if err := Rename(src, sub); err == nil {
		t.Fatal("a file replaced a folder")
	}
	if got := read(t, src); got != "kept" {
		t.Fatalf("source holds %q after a failed rename", got)
	}
}

func TestSyncDirErrors(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
	f := filepath.Join(dir, "file")
	write(t, f, "x")
	if err := SyncDir(f); err == nil {
		t.Fatal("a file was synced as a folder")
	}
	if err := SyncFile(f); err != nil {
		t.Fatal(err)
	}
}
