package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"vidmatte/console"
)

// The console's page is served at / with a strict Content-Security-Policy,
// its files under /console/ with their types and ETags; an unknown file is
// the structured 404; a revalidation with the ETag is a 304.
func TestConsoleFiles(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(page, `<script src="/console/app.js" defer></script>`) {
		t.Fatalf("/: %d %v\n%.200s", resp.StatusCode, resp.Header, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("/: Content-Security-Policy %q", csp)
	}
	for _, name := range console.Names() {
		if name == console.IndexName {
			continue
		}
		if !strings.Contains(page, "/console/"+name) {
			t.Errorf("the page does not use %s", name)
		}
		resp, body := get("/console/"+name, nil)
		a, _ := console.Lookup(name)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != a.ContentType || body != string(a.Body) || resp.Header.Get("ETag") != a.ETag {
			t.Errorf("/console/%s: %d %v", name, resp.StatusCode, resp.Header)
		}
		if resp, body := get("/console/"+name, map[string]string{"If-None-Match": a.ETag}); resp.StatusCode != 304 || body != "" {
			t.Errorf("/console/%s revalidated: %d %q", name, resp.StatusCode, body)
		}
	}
	if ct := func() string { a, _ := console.Lookup("app.js"); return a.ContentType }(); ct != "text/javascript; charset=utf-8" {
		t.Errorf("app.js is %q", ct)
	}
	for _, path := range []string{"/console/nope.js", "/console/index.html", "/console/../api/pricing"} {
		resp, body := get(path, nil)
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, e.http.URL+"/", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD /: %v %v", resp, err)
	}
	if r := e.postJSON("/", "{}", nil); r.StatusCode != 405 || r.errCode(t) != "method_not_allowed" {
		t.Fatalf("POST /: %d %s", r.StatusCode, r.body)
	}
}
