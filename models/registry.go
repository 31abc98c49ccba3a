package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"vidmatte"
	"vidmatte/internal/fsx"
)

// Registry holds the built-in manifests and the models imported into a
// models folder (<id>.json beside <id>.onnx). It is safe for concurrent
// use.
type Registry struct {
	dir string

	mu       sync.Mutex
	byID     map[string]*Manifest
	alias    map[string]string // alias or id → id
	problems []error
	checks   map[string]checkEntry
	graphs   map[string][]byte // generated models, by id

	// deriveMu serialises writing derived model files.
	deriveMu sync.Mutex
}

// checkEntry caches a file's verification by size and modification time.
type checkEntry struct {
	size  int64
	mtime time.Time
	sum   string
}

// FileStatus is what Check found about a model's file.
type FileStatus struct {
	// Path is the file (empty for generated models).
	Path string `json:"path,omitempty"`
	// Present: the file exists (always true for generated models).
	Present bool `json:"present"`
	// Verified: its size and sha256 match the manifest.
	Verified bool `json:"verified"`
	// Size is the file's size in bytes (the graph's, for generated models).
	Size int64 `json:"size"`
	// Problem says why the file is not verified, when it is present.
	Problem string `json:"problem,omitempty"`
}

// NewRegistry returns the registry of the built-in models and those
// imported into dir (normally ModelsDir(Home())). A missing dir is fine;
// it is created by Install and Import. Imported manifests that cannot be
// read or are invalid are left out and reported by Problems.
func NewRegistry(dir string) (*Registry, error) {
	if dir == "" {
		return nil, errors.New("models: empty models folder")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	r := &Registry{
		dir:    dir,
		byID:   map[string]*Manifest{},
		alias:  map[string]string{},
		checks: map[string]checkEntry{},
		graphs: map[string][]byte{},
	}
	for _, m := range builtinManifests() {
		if err := r.add(m); err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("models: reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		m, err := readManifest(path)
		if err == nil && m.ID+".json" != e.Name() {
			err = fmt.Errorf("manifest id %q does not match its file name", m.ID)
		}
		if err == nil && m.Signature == SignatureChroma {
			err = errors.New("chroma models are built in, not imported")
		}
		if err == nil {
			m.Builtin, m.Generated, m.Convert = false, false, nil
			err = r.add(m)
		}
		if err != nil {
			r.problems = append(r.problems, fmt.Errorf("models: skipping %s: %w", path, err))
		}
	}
	return r, nil
}

func readManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// add registers m; callers hold r.mu or own r exclusively.
func (r *Registry) add(m *Manifest) error {
	if err := m.Validate(); err != nil {
		return err
	}
	names := append([]string{m.ID}, m.Aliases...)
	for _, n := range names {
		if other, dup := r.alias[n]; dup {
			return fmt.Errorf("model name %q is already used by %s", n, other)
		}
	}
	for _, n := range names {
		r.alias[n] = m.ID
	}
	r.byID[m.ID] = m
	return nil
}

// Dir returns the models folder.
func (r *Registry) Dir() string { return r.dir }

// Problems returns why imported manifests were left out, if any were.
func (r *Registry) Problems() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.problems)
}

// Get returns the model an id or alias names (case-insensitive). An unknown
// name is a *vidmatte.Error with CodeInvalid whose message lists the valid
// ids.
func (r *Registry) Get(idOrAlias string) (*Manifest, error) {
	key := strings.ToLower(strings.TrimSpace(idOrAlias))
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.alias[key]; ok {
		return r.byID[id], nil
	}
	ids := make([]string, 0, len(r.byID))
	for id := range r.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return nil, &vidmatte.Error{
		Code:    vidmatte.CodeInvalid,
		Field:   "model",
		Message: fmt.Sprintf("unknown model %q; valid models: %s", idOrAlias, strings.Join(ids, ", ")),
	}
}

// List returns every model, sorted by id.
func (r *Registry) List() []*Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Manifest, 0, len(r.byID))
	for _, m := range r.byID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Path returns the model's file, or "" for a generated model.
func (r *Registry) Path(m *Manifest) string {
	if m.File == "" {
		return ""
	}
	return filepath.Join(r.dir, m.File)
}

// Check reports whether the model's file is present and matches its
// manifest. The sha256 is computed once per file size and modification
// time, so repeated calls are cheap.
func (r *Registry) Check(m *Manifest) FileStatus {
	if m.Generated {
		data, err := r.graph(m)
		if err != nil {
			return FileStatus{Present: true, Problem: err.Error()}
		}
		return FileStatus{Present: true, Verified: true, Size: int64(len(data))}
	}
	if m.Convert != nil {
		return r.checkConverted(m)
	}
	return r.checkFile(r.Path(m), m.Size, m.SHA256)
}

func (r *Registry) checkFile(path string, size int64, sum string) FileStatus {
	st := FileStatus{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			st.Problem = err.Error()
		}
		return st
	}
	st.Present = true
	st.Size = fi.Size()
	if fi.IsDir() {
		st.Problem = "is a folder"
		return st
	}
	if size > 0 && fi.Size() != size {
		st.Problem = fmt.Sprintf("size %d, want %d", fi.Size(), size)
		return st
	}
	r.mu.Lock()
	c, ok := r.checks[path]
	r.mu.Unlock()
	if !ok || c.size != fi.Size() || !c.mtime.Equal(fi.ModTime()) {
		got, err := fileSHA256(path)
		if err != nil {
			st.Problem = err.Error()
			return st
		}
		c = checkEntry{size: fi.Size(), mtime: fi.ModTime(), sum: got}
		r.mu.Lock()
		r.checks[path] = c
		r.mu.Unlock()
	}
	if sum == "" {
		st.Problem = "no sha256 to check against"
		return st
	}
	if !strings.EqualFold(c.sum, sum) {
		st.Problem = fmt.Sprintf("sha256 %s, want %s", c.sum, sum)
		return st
	}
	st.Verified = true
	return st
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// graph returns the bytes of a generated model, building them once.
func (r *Registry) graph(m *Manifest) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.graphs[m.ID]; ok {
		return g, nil
	}
	if m.Signature != SignatureChroma || m.Chroma == nil {
		return nil, fmt.Errorf("models: %s is not a generated model", m.ID)
	}
	g, err := BuildChroma(*m.Chroma)
	if err != nil {
		return nil, err
	}
	r.graphs[m.ID] = g
	return g, nil
}

// writeFileAtomic writes data to path through a temporary file in the
// same folder, synced and renamed into place.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic creates path with what fill writes, atomically: readers see
// the old file or the whole new one, never a part.
func writeAtomic(path string, fill func(w io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := fsx.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
