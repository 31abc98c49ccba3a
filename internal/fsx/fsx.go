// Package fsx owns durable file replacement: a file is made to survive a
// power cut before it takes its final name, and the name change itself is
// made to survive one too.
package fsx

import (
	"fmt"
	"os"
	"path/filepath"
)

// Rename moves the finished file at oldpath to newpath so that, once it
// returns nil, a crash or power cut leaves newpath with the whole content
// of the file: the file's data is flushed to disk (fsync) before the
// rename, and the folder holding newpath (and the one that held oldpath,
// when it is another) after it. oldpath must be a regular file; newpath is
// replaced when it exists. On an error before the rename, oldpath is left
// where it was; the caller decides whether to remove it.
func Rename(oldpath, newpath string) error {
	if err := SyncFile(oldpath); err != nil {
		return err
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return fmt.Errorf("fsx: %w", err)
	}
	newDir := filepath.Dir(newpath)
	if err := SyncDir(newDir); err != nil {
		return err
	}
	if oldDir := filepath.Dir(oldpath); !sameDir(oldDir, newDir) {
		return SyncDir(oldDir)
	}
	return nil
}

// SyncFile flushes a regular file's data and metadata to disk.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fsx: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("fsx: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("fsx: %s is not a regular file", path)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsx: sync %s: %w", path, err)
	}
	return nil
}

// SyncDir flushes a folder's entries to disk, so that files created,
// renamed or removed in it stay so after a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsx: %w", err)
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return fmt.Errorf("fsx: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("fsx: %s is not a folder", dir)
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsx: sync folder %s: %w", dir, err)
	}
	return nil
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
