package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"vidmatte"
	"vidmatte/internal/fsx"
)

// Local keeps objects as files under a folder: the key is the path below
// it. A Put writes a hidden temporary file beside the final one, syncs it
// and renames it into place (internal/fsx), so a crash leaves the old file
// or the new one.
type Local struct {
	root string
}

// NewLocal returns the store of the folder root, creating it.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeUnavailable, "artifacts: create the folder")
	}
	return &Local{root: abs}, nil
}

// Name says where the files are.
func (l *Local) Name() string { return "local " + l.root }

// Path is the local file of a key (for code that needs a file on this
// machine, such as FFmpeg's input).
func (l *Local) Path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// Put writes the object through a temporary file renamed into place.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	p, err := l.Path(key)
	if err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return Info{}, localError(err, key)
	}
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+"."+vidmatte.NewID("")+".part")
	if err := writeFile(ctx, tmp, r); err != nil {
		return Info{}, err
	}
	if size >= 0 {
		if st, err := os.Stat(tmp); err != nil || st.Size() != size {
			os.Remove(tmp)
			return Info{}, vidmatte.Errorf(vidmatte.CodeInvalid, "artifacts: %s: got %d bytes of %d", key, statSize(st), size)
		}
	}
	if err := fsx.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return Info{}, localError(err, key)
	}
	return l.Stat(ctx, key)
}

func statSize(st fs.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}

// Open opens the object's file.
func (l *Local) Open(_ context.Context, key string) (Object, error) {
	p, err := l.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, localError(err, key)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "artifacts: no object %s", key)
	}
	return &localObject{File: f, info: Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

type localObject struct {
	*os.File
	info Info
}

func (o *localObject) Info() Info { return o.info }

// Stat describes the object's file.
func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	p, err := l.Path(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Info{}, localError(err, key)
	}
	if !st.Mode().IsRegular() {
		return Info{}, vidmatte.Errorf(vidmatte.CodeNotFound, "artifacts: no object %s", key)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete removes the file, and the folders it leaves empty up to the root.
func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return localError(err, key)
	}
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or gone
		}
	}
	return nil
}

// List walks the files under the root whose keys start with prefix.
// Temporary files of Puts in flight are not objects and are skipped.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	var infos []Info
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		infos = append(infos, Info{Key: key, Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return localError(err, prefix)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// writeFile copies r to a new file at path, synced, removing it on error.
func writeFile(ctx context.Context, path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return localError(err, path)
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		var ve *vidmatte.Error
		if errors.As(err, &ve) {
			return err
		}
		return localError(err, path)
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func localError(err error, what string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return vidmatte.Errorf(vidmatte.CodeNotFound, "artifacts: no object %s", what)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return vidmatte.Wrap(err, vidmatte.CodeUnavailable, fmt.Sprintf("artifacts: %s", what))
}
