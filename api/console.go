package api

import (
	"net/http"

	"vidmatte"
	"vidmatte/console"
)

// consoleCSP keeps the console to its own files: scripts, styles and API
// calls from this origin only; media from this origin and the browser's
// own blob: URLs (the chosen file, before and after the upload); images
// also from data: and blob: URLs and, for the preview of an image
// background, from any http(s) URL the user types.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data: blob: http: https:; media-src 'self' blob:; font-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// handleConsole serves the web console's page at / and its files under
// /console/. They are embedded in the binary; each carries a strong ETag
// and is revalidated on every use, so an upgraded daemon never serves a
// stale page.
func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request, p params) {
	name := p["file"]
	if name == "" {
		name = console.IndexName
	}
	a, ok := console.Lookup(name)
	if !ok || (name == console.IndexName && p["file"] != "") {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeNotFound, "no such console file: %s", vidmatte.SafeText(name)))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("ETag", a.ETag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if name == console.IndexName {
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Frame-Options", "DENY")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", itoa(len(a.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.Body)
	}
}
