package api

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUploadMultipart sends arbitrary multipart bodies (and boundaries)
// through the whole handler stack of POST /v1/uploads: every answer is a
// 201 or a structured 4xx/503, never a panic or a 500, and a refused body
// leaves no file behind.
func FuzzUploadMultipart(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "clip.mp4")
	fw.Write([]byte("not a video at all"))
	mw.Close()
	f.Add(buf.Bytes(), mw.Boundary())
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"\r\n\r\n\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\n\r\n--b--"), "b")
	f.Add([]byte(""), "b")
	e := newEnv(f, func(c *envConfig) { c.RateLimit, c.RateBurst = 1e9, 1<<30 })
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/uploads", bytes.NewReader(body))
		req.Header.Set("X-Api-Key", e.key)
		req.Header.Set("Content-Type", "multipart/form-data; boundary=\""+boundary+"\"")
		before := countFiles(filepath.Join(e.dir, "uploads"))
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			return
		case rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable:
			t.Fatalf("%d: %s", rec.Code, rec.Body)
		}
		var m struct {
			Error *struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &m) != nil || m.Error == nil || m.Error.Code == "" {
			t.Fatalf("%d is not a structured error: %s", rec.Code, rec.Body)
		}
		if after := countFiles(filepath.Join(e.dir, "uploads")); after != before {
			t.Fatalf("refused upload (%d) left %d files, %d before", rec.Code, after, before)
		}
	})
}

func countFiles(dir string) int {
	files, _ := os.ReadDir(dir)
	return len(files)
}
