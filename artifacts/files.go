package artifacts

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"vidmatte"
)

// refPrefix marks a reference to an object of the store; a reference
// without it is a local file's absolute path.
const refPrefix = "s3:"

// Files keeps the daemon's files (uploads, fetched videos, outputs) where
// the daemon is configured to, and names each by a reference that the job
// store records. With no object store (the embedded default) a reference
// is the file's absolute path on this machine, and files stay where they
// were written. With one (a cluster), a file is put into the store once it
// is complete and its reference is "s3:" and its key, so every daemon can
// read it; a daemon that needs a local file (FFmpeg reads files) gets a
// copy in its scratch folder, removed when it is done.
type Files struct {
	store   Store  // nil: local files
	scratch string // where copies of objects are made
}

// NewFiles returns the files of the store (nil: local files only), with
// copies made under scratch.
func NewFiles(store Store, scratch string) (*Files, error) {
	if store != nil {
		if err := os.MkdirAll(scratch, 0o750); err != nil {
			return nil, err
		}
	}
	return &Files{store: store, scratch: scratch}, nil
}

// Name says where the files are kept.
func (f *Files) Name() string {
	if f.store == nil {
		return "local"
	}
	return f.store.Name()
}

// Ping checks that the object store answers (local files always do): the
// files' part of the daemon's health.
func (f *Files) Ping(ctx context.Context) error {
	if f.store == nil {
		return nil
	}
	return f.store.List(ctx, "health/", func(Info) error { return nil })
}

// Shared reports whether the files are in an object store every daemon
// reads.
func (f *Files) Shared() bool { return f.store != nil }

// Keep takes a complete local file and returns its reference: the path
// itself for local files; for an object store, the file is put under key
// and the local file removed.
func (f *Files) Keep(ctx context.Context, key, path string) (string, error) {
	if f.store == nil {
		return path, nil
	}
	in, err := os.Open(path)
	if err != nil {
		return "", localError(err, path)
	}
	st, err := in.Stat()
	if err != nil {
		in.Close()
		return "", localError(err, path)
	}
	_, err = f.store.Put(ctx, key, in, st.Size())
	in.Close()
	if err != nil {
		return "", err
	}
	os.Remove(path)
	return refPrefix + key, nil
}

// Local returns a local file with the content of ref, and a release to
// call when done with it: a local reference is its own file (release does
// nothing); an object is copied into the scratch folder (release removes
// the copy).
func (f *Files) Local(ctx context.Context, ref string) (string, func(), error) {
	key, ok := strings.CutPrefix(ref, refPrefix)
	if !ok {
		return ref, func() {}, nil
	}
	if f.store == nil {
		return "", nil, vidmatte.Errorf(vidmatte.CodeUnavailable, "artifacts: %s is in an object store and none is configured", ref)
	}
	p := filepath.Join(f.scratch, vidmatte.NewID("in_")+filepath.Ext(key))
	if err := Download(ctx, f.store, key, p); err != nil {
		return "", nil, err
	}
	return p, func() { os.Remove(p) }, nil
}

// Open opens the content of a reference.
func (f *Files) Open(ctx context.Context, ref string) (Object, error) {
	if key, ok := strings.CutPrefix(ref, refPrefix); ok {
		if f.store == nil {
			return nil, vidmatte.Errorf(vidmatte.CodeUnavailable, "artifacts: %s is in an object store and none is configured", ref)
		}
		return f.store.Open(ctx, key)
	}
	file, err := os.Open(ref)
	if err != nil {
		return nil, localError(err, ref)
	}
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		file.Close()
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "artifacts: no file %s", ref)
	}
	return &localObject{File: file, info: Info{Key: ref, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

// Delete removes the content of a reference and returns the bytes freed;
// one already gone is no error.
func (f *Files) Delete(ctx context.Context, ref string) (int64, error) {
	if key, ok := strings.CutPrefix(ref, refPrefix); ok {
		if f.store == nil {
			return 0, vidmatte.Errorf(vidmatte.CodeUnavailable, "artifacts: %s is in an object store and none is configured", ref)
		}
		info, err := f.store.Stat(ctx, key)
		if vidmatte.ErrorCode(err) == vidmatte.CodeNotFound {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return info.Size, f.store.Delete(ctx, key)
	}
	st, err := os.Lstat(ref)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, localError(err, ref)
	}
	if err := os.Remove(ref); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, localError(err, ref)
	}
	return st.Size(), nil
}

// IsObject reports whether ref names an object of a store (not a local
// file).
func IsObject(ref string) bool { return strings.HasPrefix(ref, refPrefix) }
