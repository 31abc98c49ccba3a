// Package artifacts keeps the daemon's files — uploaded and fetched videos,
// outputs, background images — behind one interface, with two backends: a
// folder on the local disk (the embedded default) and an S3-compatible
// object store (a cluster of daemons, where every node must see every
// file). Objects are named by keys such as "uploads/vid_….mp4" and
// "outputs/job_…/job_….webm"; a Put is atomic, so a reader sees the whole
// object or none of it.
package artifacts

import (
	"context"
	"io"
	"strings"
	"time"

	"vidmatte"
)

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Object is an open object: read it whole or seek for ranges.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store keeps objects by key. Every method returns errors of the project's
// vocabulary: a missing object is CodeNotFound, a bad key CodeInvalid, a
// backend that cannot be reached CodeUnavailable.
type Store interface {
	// Put stores r's content under key (size -1 when unknown), replacing
	// any object there. It is atomic and durable once it returns: a reader
	// sees the old object or the whole new one, and a crash leaves no part.
	// Content is streamed, never held whole in memory.
	Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error)
	// Open opens an object for reading.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes an object.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes an object; a missing one is no error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in key
	// order, until fn returns an error (which List returns).
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Name says which backend this is and where, for /health and logs
	// ("local /var/lib/vidmatte", "s3 bucket at https://…").
	Name() string
}

// CheckKey refuses a key that is empty, absolute, has an empty, "." or
// ".." element, or characters outside letters, digits and "._-/".
func CheckKey(key string) error {
	if key == "" || len(key) > 512 || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "artifacts: bad key %q", vidmatte.SafeText(key))
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return vidmatte.Errorf(vidmatte.CodeInvalid, "artifacts: bad key %q", vidmatte.SafeText(key))
		}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return vidmatte.Errorf(vidmatte.CodeInvalid, "artifacts: bad key %q", vidmatte.SafeText(key))
		}
	}
	return nil
}

// Download copies an object to a new local file at path (scratch space for
// FFmpeg, which reads local files only), removing it on error.
func Download(ctx context.Context, s Store, key, path string) error {
	obj, err := s.Open(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	return writeFile(ctx, path, obj)
}
