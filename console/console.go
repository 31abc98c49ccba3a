// Package console owns the daemon's web console: plain HTML, CSS and
// JavaScript, embedded in the binary, with no build step and nothing
// fetched from elsewhere. The console is a client of the public /v1 API
// like any other: it signs in with an API key the user pastes (kept in the
// browser's session storage only) and sends it as X-Api-Key on every call.
// Package api serves these files; this package only holds them.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"sort"
)

//go:embed static
var static embed.FS

// Asset is one file of the console.
type Asset struct {
	Name        string // the file name, e.g. "app.js"
	ContentType string
	Body        []byte
	ETag        string // a strong validator: the quoted sha256 of Body
}

// IndexName is the page served at the daemon's root.
const IndexName = "index.html"

var assets = load()

func load() map[string]*Asset {
	m := map[string]*Asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // not left to the host's MIME tables
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		m[name] = &Asset{Name: name, ContentType: ct, Body: b, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error())
	}
	if m[IndexName] == nil {
		panic("console: no " + IndexName)
	}
	return m
}

// Lookup returns the console's file of that name.
func Lookup(name string) (*Asset, bool) {
	a, ok := assets[name]
	return a, ok
}

// Names lists the console's files.
func Names() []string {
	out := make([]string, 0, len(assets))
	for n := range assets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
