package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dataLock is an exclusive flock on a data folder's lock file, held by one
// `vidmatte serve` for as long as it runs. A second daemon on the same folder
// would requeue the first one's running jobs and delete their outputs.
type dataLock struct{ f *os.File }

// lockDataDir takes the data folder's lock or says which process holds it.
// The kernel drops the lock when the process exits, however it exits.
func lockDataDir(dataDir string) (*dataLock, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, "vidmatte.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf("process %d", pid)
				}
			}
			return nil, fmt.Errorf("data folder %s is in use by %s (another vidmatte serve holds %s); stop it or choose another --data", dataDir, holder, path)
		}
		return nil, fmt.Errorf("locking data folder %s: %w", dataDir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataLock{f: f}, nil
}

// Close releases the lock.
func (l *dataLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
