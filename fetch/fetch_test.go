package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"vidmatte"
)

func TestFetchRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("data")) }))
	defer srv.Close()
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL+"/x", http.StatusFound))
	defer redirect.Close()
	c := New(Options{})
	dir := t.TempDir()
	for _, u := range []string{srv.URL + "/x", redirect.URL, "http://169.254.169.254/latest", "http://[::1]:1/x", "http://10.1.2.3:1/x"} {
		_, _, err := c.Fetch(context.Background(), u, "video_url", dir, "f", 1<<20)
		if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid || !strings.Contains(err.Error(), "not public") {
			t.Errorf("%s: %v", u, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused fetches left files: %v", entries)
	}
}

func TestFetchSizeCapAndStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(make([]byte, 5000)) // chunked: no Content-Length to refuse up front
			w.(http.Flusher).Flush()
			w.Write(make([]byte, 5000))
		case "/gone":
			http.NotFound(w, r)
		default:
			w.Write([]byte("small"))
		}
	}))
	defer srv.Close()
	c := New(Options{AllowPrivate: true})
	dir := t.TempDir()
	if _, _, err := c.Fetch(context.Background(), srv.URL+"/big", "video_url", dir, "big", 6000); vidmatte.ErrorCode(err) != vidmatte.CodeTooLarge {
		t.Fatalf("past the cap: %v", err)
	}
	if _, _, err := c.Fetch(context.Background(), srv.URL+"/gone", "video_url", dir, "gone", 6000); vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable {
		t.Fatalf("404: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed fetches left files: %v", entries)
	}
	p, n, err := c.Fetch(context.Background(), srv.URL+"/ok", "video_url", dir, "ok", 6000)
	if err != nil || n != 5 {
		t.Fatalf("fetch: %v %d", err, n)
	}
	if b, _ := os.ReadFile(p); string(b) != "small" {
		t.Fatalf("fetched %q", b)
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"ftp://x/y", "/relative", "http://user:pw@host/x", "http:///nohost", "file:///etc/passwd"} {
		if err := CheckURL(u, "background.image_url"); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
			t.Errorf("%s accepted: %v", u, err)
		}
	}
	if err := CheckURL("https://example.com/bg.png", "background.image_url"); err != nil {
		t.Fatal(err)
	}
}
