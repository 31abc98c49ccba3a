package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"vidmatte"
)

// /metrics names no job: after jobs were created and observed as finished
// (as the runner reports them), neither the text nor the OpenMetrics
// scrape holds a job id.
func TestMetricsNameNoJob(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(time.Second)
	var ids []string
	for i := 0; i < 2; i++ {
		r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil)
		if r.StatusCode != 201 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		id := r.json(t)["job_id"].(string)
		ids = append(ids, id)
		e.srv.Metrics().ObserveJob(id, vidmatte.StatusCompleted, 30, time.Second, 2*time.Second)
	}
	for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/metrics", nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(b)
		if !strings.Contains(text, "vidmatte_frames_processed_total") {
			t.Fatalf("%s: no frames counter:\n%s", accept, text)
		}
		for _, id := range ids {
			if strings.Contains(text, id) {
				t.Fatalf("%s: scrape names job %s:\n%s", accept, id, text)
			}
		}
		if strings.Contains(text, "job_id") || strings.Contains(text, e.keyObj.ID) {
			t.Fatalf("%s: scrape names a job or key:\n%s", accept, text)
		}
	}
}

// With a metrics token, /metrics needs it as a bearer token.
func TestMetricsToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MetricsToken = "s3cret-scrape" })
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"s3cret-scrape", 401}, {"Bearer s3cret-scrape", 200}} {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
		if tc.want == 401 {
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if json.Unmarshal(b, &body) != nil || body.Error.Code != "invalid_api_key" {
				t.Fatalf("401 body: %s", b)
			}
		}
	}
}

// Every authenticated route answers 401 without a key, whatever its path
// parameters look like: authentication comes before any lookup or check of
// the id.
func TestUnauthenticatedBeforeNotFound(t *testing.T) {
	e := newEnv(t, nil)
	noKey := map[string]string{"X-Api-Key": ""}
	for _, rt := range e.srv.router.routes {
		if !rt.auth {
			continue
		}
		for _, id := range []string{"a.b", "job_missing", "%2e%2e"} {
			path := strings.ReplaceAll(rt.pattern, "{job_id}", id)
			var body io.Reader
			if rt.method == http.MethodPost {
				body = strings.NewReader(`{}`)
			}
			r := e.do(rt.method, path, body, noKey)
			if r.StatusCode != 401 || r.errCode(t) != "invalid_api_key" {
				t.Fatalf("%s %s without a key: %d %s", rt.method, path, r.StatusCode, r.body)
			}
		}
	}
}

// The access log line names key_id once.
func TestAccessLogKeyIDOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.get("/v1/jobs")
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"/v1/jobs"`) {
			if n := strings.Count(line, `"key_id"`); n != 1 {
				t.Fatalf("key_id %d times: %s", n, line)
			}
			return
		}
	}
	t.Fatalf("no access log line:\n%s", e.logs.String())
}
