// Package api is the daemon's HTTP face: the /v1 contract of docs/API.md and
// its legacy /api routes, with authentication, per-key rate limits,
// idempotent POSTs, strict request validation and the structured error
// payload; streaming uploads; signed, expiring output URLs served by the
// daemon; health, Prometheus metrics and the OpenAPI document. It is the only package that knows HTTP status codes:
// handlers decode, validate, make one service call and encode.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"vidmatte/artifacts"
	"vidmatte/service"

	"vidmatte"
)

// Store is what the api reads of the store directly: keys, jobs, usage,
// idempotency records, webhook deliveries, and a reachability check.
// *store.DB satisfies it. Uploads and changes of jobs go through the
// service.
type Store interface {
	vidmatte.KeyService
	vidmatte.JobService
	vidmatte.UsageService
	vidmatte.IdempotencyService
	vidmatte.WebhookService
	// JobsChangedSince lists the key's jobs by their last change, oldest
	// first: the source of the stream of job changes.
	JobsChangedSince(ctx context.Context, keyID string, since time.Time, limit int) ([]*vidmatte.Job, error)
	Ping(ctx context.Context) error
	// Backend names the database: sqlite or postgres.
	Backend() string
}

// Limits bound what a client can make the daemon read.
type Limits struct {
	MaxUploadBytes int64 // one uploaded file (default 500 MB)
	MaxBodyBytes   int64 // one JSON request body (default 1 MiB)
	// A request body must bring at least BodyMinBytes in every
	// BodyWindow (defaults 16 KiB in 10 s); a slower one is cut off, so a
	// trickling client cannot hold a goroutine and a file for ever.
	BodyWindow   time.Duration
	BodyMinBytes int64
	// ConcurrentUploads is how many uploads one key may stream at once
	// (default 4); one more is a 429.
	ConcurrentUploads int
}

// Config is everything the api is built from.
type Config struct {
	Store   Store
	Service *service.Service
	// Files serves outputs wherever they are kept (nil: local files).
	Files *artifacts.Files
	// Secret signs output URLs (LoadSecret keeps one in the data dir).
	Secret []byte
	// PublicURL is the daemon's base URL as clients reach it, used for
	// output URLs in webhooks; requests use their own Host when it is empty.
	PublicURL string

	// IdempotencyLease is how long a claimed Idempotency-Key stays in
	// progress before a retry may take it over (DefaultIdempotencyLease
	// when zero).
	IdempotencyLease time.Duration

	// MetricsToken, when set, is the bearer token GET /metrics requires
	// (Authorization: Bearer <token>); empty leaves /metrics public.
	MetricsToken string

	Limits       Limits
	RateLimit    float64 // requests per second per key (default 10)
	RateBurst    int     // bucket size (default 20)
	OutputURLTTL time.Duration
	// EventsInterval is how often a stream of job changes reads the store
	// (default 1 s).
	EventsInterval time.Duration

	// ModelsReady reports whether the models can be loaded (for /health).
	ModelsReady func(ctx context.Context) error

	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time
}

// Server is the daemon's HTTP handler and its background loop (the purge
// of idempotency records).
type Server struct {
	cfg Config
	// createUpload creates an upload's file (createUploadFile when nil);
	// tests replace it to make the disk fail.
	createUpload func(path string) (io.WriteCloser, error)
	store        Store
	log          *slog.Logger
	metrics      *Metrics
	router       router
	limiter      *limiter
	signer       *signer
	svc          *service.Service
	files        *artifacts.Files
	draining     atomic.Bool

	streamsDone chan struct{} // closed by EndStreams
	endStreams  sync.Once

	uploadsMu sync.Mutex
	uploading map[string]int // uploads in progress by key id
}

// New checks cfg, fills its defaults and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: no store")
	}
	if cfg.Service == nil {
		return nil, errors.New("api: no service")
	}
	if cfg.Files == nil {
		cfg.Files, _ = artifacts.NewFiles(nil, "")
	}

	if len(cfg.Secret) < 16 {
		return nil, errors.New("api: the output URL secret is shorter than 16 bytes")
	}
	if cfg.Limits.MaxUploadBytes <= 0 {
		cfg.Limits.MaxUploadBytes = 500 << 20
	}
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits.MaxBodyBytes = 1 << 20
	}
	if cfg.Limits.BodyWindow <= 0 {
		cfg.Limits.BodyWindow = 10 * time.Second
	}
	if cfg.Limits.BodyMinBytes <= 0 {
		cfg.Limits.BodyMinBytes = 16 << 10
	}
	if cfg.Limits.ConcurrentUploads <= 0 {
		cfg.Limits.ConcurrentUploads = 4
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 10
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 20
	}
	if cfg.OutputURLTTL <= 0 {
		cfg.OutputURLTTL = 24 * time.Hour
	}
	if cfg.EventsInterval <= 0 {
		cfg.EventsInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.IdempotencyLease <= 0 {
		cfg.IdempotencyLease = DefaultIdempotencyLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{
		cfg:     cfg,
		store:   cfg.Store,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now),
		signer:  &signer{secret: cfg.Secret, now: cfg.Now},
		svc:     cfg.Service,
		files:   cfg.Files,

		streamsDone: make(chan struct{}),
	}
	cfg.Metrics.watchStore(cfg.Store)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	rt := &s.router
	rt.add(http.MethodPost, "/v1/uploads", true, s.handleUpload)
	rt.add(http.MethodPost, "/v1/jobs", true, s.handleCreateJob)
	rt.add(http.MethodGet, "/v1/jobs", true, s.handleListJobs)
	rt.add(http.MethodGet, "/v1/jobs/events", true, s.handleJobEvents)
	rt.add(http.MethodGet, "/v1/jobs/{job_id}", true, s.handleGetJob)
	rt.add(http.MethodPost, "/v1/jobs/{job_id}/start", true, s.handleStartJob)
	rt.add(http.MethodPost, "/v1/jobs/{job_id}/cancel", true, s.handleCancelJob)
	rt.add(http.MethodGet, "/v1/usage/summary", true, s.handleUsageSummary)
	rt.add(http.MethodGet, "/v1/usage/events", true, s.handleUsageEvents)
	rt.add(http.MethodGet, "/v1/openapi.json", false, s.handleOpenAPI)
	rt.add(http.MethodGet, "/api/download/{job_id}", true, s.handleDownload)
	rt.add(http.MethodGet, "/api/pricing", false, s.handlePricing)
	rt.add(http.MethodGet, "/outputs/{file}", false, s.handleOutput)
	rt.add(http.MethodGet, "/health", false, s.handleHealth)
	rt.add(http.MethodGet, "/metrics", false, s.handleMetrics)
	rt.add(http.MethodGet, "/", false, s.handleConsole)
	rt.add(http.MethodGet, "/console/{file}", false, s.handleConsole)
}

// Metrics returns the server's metrics, for the runner's observations.
func (s *Server) Metrics() *Metrics { return s.metrics }

// SetDraining marks the daemon as draining: /health answers 503 and new
// jobs are still accepted into the queue for the next start.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// Run purges idempotency records older than a day, hourly, until ctx is
// done.
func (s *Server) Run(ctx context.Context) error {
	s.purgeLoop(ctx)
	return nil
}

func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.store.PurgeIdempotent(ctx, s.cfg.Now().Add(-IdempotencyTTL))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("purging idempotency records", slog.Any("error", err))
		} else if n > 0 {
			s.log.Info("purged idempotency records", slog.Int("count", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServeHTTP runs a request through the middleware: request id, panic
// recovery, routing (structured 404/405), authentication, rate limit,
// idempotency, then the handler; and logs and counts it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !acceptRequestID(id) {
		id = vidmatte.NewID("req_")
	}
	ri := &requestInfo{id: id, host: r.Host, log: s.log.With(slog.String("request_id", id))}
	r = r.WithContext(withInfo(r.Context(), ri))
	w.Header().Set("X-Request-Id", id)
	rec := &statusWriter{ResponseWriter: w}

	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			ri.log.Error("handler panic", slog.Any("panic", p))
			if !rec.wrote {
				writeError(rec, r, fmt.Errorf("panic: %v", p))
			}
		}
		elapsed := time.Since(start)
		route := ri.route
		if route == "" {
			route = "unmatched"
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.observeRequest(route, r.Method, status, elapsed, id)
		attrs := []any{
			slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed),
		}
		// key_id is already on ri.log once the key is known.
		if ri.replay {
			attrs = append(attrs, slog.Bool("idempotent_replay", true))
		}
		ri.log.Info("request", attrs...)
	}()

	rt, p, allowed := s.router.match(r.Method, r.URL.Path)
	if rt == nil {
		if len(allowed) > 0 {
			rec.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(rec, r, errBadMethod(r.Method, allowed))
			return
		}
		writeError(rec, r, errNoRoute(r.URL.Path))
		return
	}
	ri.route = rt.pattern
	s.guardBody(rec, r)
	if rt.auth {
		// Authenticate before anything about the path is answered: a
		// malformed or unknown id without a key is a 401, not a 404.
		key, err := s.authenticate(r)
		if err != nil {
			writeError(rec, r, err)
			return
		}
		ri.key = key
		ri.log = ri.log.With(slog.String("key_id", key.ID))
	}
	if id := p["job_id"]; id != "" {
		if !vidmatte.ValidID(id) {
			writeError(rec, r, vidmatte.Errorf(vidmatte.CodeNotFound, "job not found"))
			return
		}
		setJobID(r.Context(), id)
	}
	if rt.auth {
		key := ri.key
		if !s.rateLimit(rec, key.ID) {
			writeError(rec, r, vidmatte.Errorf(vidmatte.CodeRateLimited, "rate limit exceeded; retry after %s seconds", rec.Header().Get("Retry-After")))
			return
		}
		if r.Method == http.MethodPost && rt.pattern != "/v1/uploads" {
			s.serveIdempotent(rec, r, func(w http.ResponseWriter, r *http.Request) { rt.handler(w, r, p) })
			return
		}
	}
	rt.handler(rec, r, p)
}

// guardBody makes the request's body keep a minimum rate: before the first
// read the connection's read deadline is set one window ahead, and moved
// one window on each time a window's worth of bytes (BodyMinBytes) has
// arrived. A client slower than that hits the deadline and its request
// ends with a structured 400.
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &rateReader{
		ReadCloser: r.Body,
		rc:         http.NewResponseController(w),
		window:     s.cfg.Limits.BodyWindow,
		min:        s.cfg.Limits.BodyMinBytes,
		log:        infoFrom(r.Context()),
	}
}

type rateReader struct {
	io.ReadCloser
	rc      *http.ResponseController
	window  time.Duration
	min     int64
	got     int64
	started bool
	log     *requestInfo
}

func (b *rateReader) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.extend()
	}
	n, err := b.ReadCloser.Read(p)
	b.got += int64(n)
	if b.got >= b.min {
		b.got = 0
		b.extend()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, vidmatte.Wrap(err, vidmatte.CodeInvalid, "request body arrived too slowly: at least "+strconv.FormatInt(b.min, 10)+" bytes every "+b.window.String())
	}
	return n, err
}

func (b *rateReader) extend() {
	if err := b.rc.SetReadDeadline(time.Now().Add(b.window)); err != nil && b.log != nil {
		b.log.log.Debug("body read deadline not set", slog.Any("error", err))
	}
}

// authenticate checks X-Api-Key.
func (s *Server) authenticate(r *http.Request) (*vidmatte.Key, error) {
	secret := r.Header.Get("X-Api-Key")
	if secret == "" {
		return nil, vidmatte.Errorf(vidmatte.CodeUnauthenticated, "missing X-Api-Key header")
	}
	if len(secret) > 256 {
		return nil, vidmatte.Errorf(vidmatte.CodeUnauthenticated, "invalid API key")
	}
	key, err := s.store.AuthenticateKey(r.Context(), secret)
	if err != nil {
		if vidmatte.ErrorCode(err) == vidmatte.CodeUnauthenticated || vidmatte.ErrorCode(err) == vidmatte.CodeNotFound {
			return nil, vidmatte.Errorf(vidmatte.CodeUnauthenticated, "invalid API key")
		}
		return nil, err
	}
	return key, nil
}

// baseURL is the daemon's URL as the client reached it.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" || r == nil {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// itoa is strconv.Itoa, short.
func itoa(n int) string { return strconv.Itoa(n) }

// drain reads and discards what is left of a body so the connection can be
// reused, up to a bound.
func drain(r io.Reader) { _, _ = io.CopyN(io.Discard, r, 64<<10) }
