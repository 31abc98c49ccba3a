package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkGetJob measures one authenticated, rate-limited GET of a job
// through the whole middleware on the real store (the handler is called
// directly, without a network).
func BenchmarkGetJob(b *testing.B) {
	e := newEnv(b, func(c *envConfig) { c.RateLimit = 1e9; c.RateBurst = 1 << 30 })
	video := e.uploadClip(time.Second)
	id := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil).json(b)["id"].(string)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/v1/jobs/"+id, nil)
		req.Header.Set("X-Api-Key", e.key)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkParseJobRequest measures strict validation of a full create body.
func BenchmarkParseJobRequest(b *testing.B) {
	body := []byte(`{"video_url":"https://example.com/a.mp4","model":"isnet","output_format":"webm",` +
		`"background":{"type":"color","color":[0.1,0.2,0.3]},"composition":{"canvas":{"width":1920,"height":1080},` +
		`"foreground":{"anchor":"bottom","scale":0.5,"offset":{"x":1,"y":2}}},"webhook_url":"https://h/hook",` +
		`"metadata":{"a":"1","b":"2","c":"3"}}`)
	for b.Loop() {
		if _, err := parseJobRequest(body, true); err != nil {
			b.Fatal(err)
		}
	}
}
