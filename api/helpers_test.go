package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/fetch"
	"vidmatte/internal/testmedia"
	"vidmatte/service"
	"vidmatte/store"
)

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a server on the real store over real HTTP on loopback.
type testEnv struct {
	t      testing.TB
	db     *store.DB
	srv    *Server
	http   *httptest.Server
	logs   *syncBuffer
	svc    *service.Service
	key    string
	keyObj *vidmatte.Key
	dir    string
	now    *time.Time // when set, the server's clock
	mu     sync.Mutex
}

func probeForTest(_ context.Context, path string) (*vidmatte.MediaInfo, error) {
	info, err := codec.Probe(path)
	if err != nil {
		return nil, err
	}
	return &vidmatte.MediaInfo{DurationSec: info.Duration.Seconds(), Width: info.Width, Height: info.Height,
		FPS: info.FrameRate.Float64(), HasAudio: info.HasAudio}, nil
}

func testCatalog(t testing.TB) *service.Catalog {
	c, err := service.NewCatalog([]service.ModelInfo{
		{ID: "chroma", Name: "Chroma key", Description: "green and blue screens", Aliases: []string{"greenscreen"}, CreditsPerMinute: 6},
		{ID: "isnet", Name: "ISNet", Description: "general salient objects", Aliases: []string{"general"}, CreditsPerMinute: 60},
	}, map[string]string{"fast": "chroma"}, "chroma")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// envConfig is what a test may change before its server is built: the
// api's configuration, the service's and the fetcher's.
type envConfig struct {
	Config
	Service service.Config
	Fetch   fetch.Options
}

func newEnv(t testing.TB, tweak func(*envConfig)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "vidmatte.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &testEnv{t: t, db: db, logs: &syncBuffer{}, dir: dir}
	secret := make([]byte, 32)
	rand.Read(secret)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.now != nil {
			return *e.now
		}
		return time.Now()
	}
	cfg := envConfig{
		Config: Config{
			Store:     db,
			Secret:    secret,
			RateLimit: 1000,
			RateBurst: 1000,
			Logger:    logger,
			Now:       now,
		},
		Service: service.Config{
			Store:   db,
			Catalog: testCatalog(t),
			Prober:  service.ProberFunc(probeForTest),
			DataDir: dir,
			Logger:  logger,
			Now:     now,
		},
		Fetch: fetch.Options{AllowPrivate: true},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cfg.Service.Fetcher = fetch.New(cfg.Fetch)
	e.svc, err = service.New(cfg.Service)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Config.Service = e.svc
	e.srv, err = New(cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv)
	t.Cleanup(e.http.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.keyObj, e.key, err = db.CreateKey(context.Background(), "test", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// setNow fixes the server's clock.
func (e *testEnv) setNow(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = &t
}

type response struct {
	*http.Response
	body []byte
}

func (r *response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.StatusCode, err, r.body)
	}
	return m
}

// errCode returns the code of a structured error, failing when the body
// is not one.
func (r *response) errCode(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("response %d is not a structured error: %s", r.StatusCode, r.body)
	}
	if e["request_id"] == "" || e["request_id"] != r.Header.Get("X-Request-Id") {
		t.Fatalf("error request_id %v does not match X-Request-Id %q", e["request_id"], r.Header.Get("X-Request-Id"))
	}
	code, _ := e["code"].(string)
	return code
}

// do sends a request and checks the response against the OpenAPI document.
func (e *testEnv) do(method, path string, body io.Reader, hdr map[string]string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, ok := hdr["X-Api-Key"]; !ok {
		req.Header.Set("X-Api-Key", e.key)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &response{Response: resp, body: b}
	if resp.Header.Get("X-Request-Id") == "" {
		e.t.Fatalf("%s %s: no X-Request-Id", method, path)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != 416 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			e.t.Fatalf("%s %s: error %d with Content-Type %q: %s", method, path, resp.StatusCode, ct, b)
		}
	}
	if resp.StatusCode == 500 {
		e.t.Fatalf("%s %s: 500: %s", method, path, b)
	}
	checkOpenAPI(e.t, req, resp, b)
	return r
}

func (e *testEnv) postJSON(path, body string, hdr map[string]string) *response {
	e.t.Helper()
	return e.do(http.MethodPost, path, strings.NewReader(body), hdr)
}

func (e *testEnv) get(path string) *response {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil, nil)
}

// upload posts a file as the multipart field file.
func (e *testEnv) upload(path, filename string, hdr map[string]string) *response {
	e.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.uploadBytes(data, filename, hdr)
}

func (e *testEnv) uploadBytes(data []byte, filename string, hdr map[string]string) *response {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		e.t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	h := map[string]string{"Content-Type": mw.FormDataContentType()}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(http.MethodPost, "/v1/uploads", &buf, h)
}

// clip makes a short real clip and uploads it, returning its video_url.
func (e *testEnv) uploadClip(d time.Duration) string {
	e.t.Helper()
	p := testmedia.Clip(e.t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: d})
	r := e.upload(p, "clip.mp4", nil)
	if r.StatusCode != http.StatusCreated {
		e.t.Fatalf("upload: %d %s", r.StatusCode, r.body)
	}
	return r.json(e.t)["video_url"].(string)
}

var (
	oaOnce   sync.Once
	oaRouter routers.Router
	oaErr    error
)

// checkOpenAPI validates a response against the OpenAPI document.
func checkOpenAPI(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	oaOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(OpenAPI())
		if err != nil {
			oaErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			oaErr = err
			return
		}
		doc.Servers = nil
		oaRouter, oaErr = legacy.NewRouter(doc)
	})
	if oaErr != nil {
		t.Fatalf("openapi document: %v", oaErr)
	}
	route, params, err := oaRouter.FindRoute(req)
	if err != nil {
		// Unknown routes and methods are not in the document; their answers
		// must still be the structured error.
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Fatalf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, resp.StatusCode, err)
		}
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m["error"] == nil {
			t.Fatalf("%s %s: %d without the structured error: %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: response %d does not match the OpenAPI document: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}
