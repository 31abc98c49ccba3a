package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"vidmatte/artifacts"
	"vidmatte/engine"
	"vidmatte/models"
)

// The daemon's configuration comes from, in rising precedence: built-in
// defaults, a TOML file (--config or $VIDMATTE_CONFIG), VIDMATTE_*
// environment variables, and flags. An example file with every key:
//
//	listen = "127.0.0.1:8080"         # VIDMATTE_LISTEN, --listen
//	data = "/var/lib/vidmatte"        # VIDMATTE_DATA, --data
//	store = "postgres://vidmatte@db.internal/vidmatte"  # VIDMATTE_STORE, --store: the job store; "" = SQLite
//	                                  #  in the data dir; a PostgreSQL URL for a cluster of daemons
//	artifacts = "s3://media/vidmatte?endpoint=s3.internal:9000&region=us-east-1"  # VIDMATTE_ARTIFACTS,
//	                                  #  --artifacts: where uploads and outputs are kept; "" = the data dir;
//	                                  #  an S3 bucket (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)
//	public_url = "https://matte.example.com"  # VIDMATTE_PUBLIC_URL, --public-url
//	default_model = "rvm"             # VIDMATTE_DEFAULT_MODEL, --default-model
//	workers = 1                       # VIDMATTE_WORKERS, --workers (jobs at once)
//	device = "cpu"                    # VIDMATTE_DEVICE, --device (cpu or cuda)
//	cpu_fallback = false              # VIDMATTE_CPU_FALLBACK, --cpu-fallback
//	batch = 1                         # VIDMATTE_BATCH, --batch
//	threads = 0                       # VIDMATTE_THREADS, --threads: threads of each job's decoder, encoders
//	                                  #  and inference (0 = the cores divided among the workers; one worker: all)
//	memory_budget = 0                 # VIDMATTE_MEMORY_BUDGET, --memory-budget (bytes one job may use:
//	                                  #  the batch is lowered to fit, a job that cannot fit is refused;
//	                                  #  0 = half the machine's memory divided among the workers)
//	session_cache = 8                 # VIDMATTE_SESSION_CACHE, --session-cache (inference sessions kept, one per model and size)
//	allow_private_fetch = false       # VIDMATTE_ALLOW_PRIVATE_FETCH, --allow-private-fetch
//	shutdown_deadline = "30s"         # VIDMATTE_SHUTDOWN_DEADLINE, --shutdown-deadline
//	output_url_ttl = "24h"            # VIDMATTE_OUTPUT_URL_TTL, --output-url-ttl
//	idempotency_lease = "15m"         # VIDMATTE_IDEMPOTENCY_LEASE (an unfinished Idempotency-Key claim is taken over after it)
//	metrics_token = ""                # VIDMATTE_METRICS_TOKEN (bearer token /metrics requires; empty = public)
//	max_attempts = 3                  # VIDMATTE_MAX_ATTEMPTS, --max-attempts: a job fails after so many interrupted attempts in a row without progress
//	reap_interval = "30s"             # VIDMATTE_REAP_INTERVAL (how often jobs left processing by a failed store write are taken back)
//	lease = "30s"                     # VIDMATTE_LEASE: how long a running job is held without a heartbeat (every lease/3);
//	                                  #  a job whose runner died is taken back by any daemon after it
//	log_format = "auto"               # VIDMATTE_LOG_FORMAT, --log-format (auto, json, text)
//	log_level = "info"                # VIDMATTE_LOG_LEVEL, --log-level
//
//	[engine]
//	segment_seconds = 4.0             # VIDMATTE_SEGMENT_SECONDS: a job is processed in segments this long, each
//	                                  #  recorded once done, so an interrupted job resumes at its first unfinished
//	                                  #  one (0 = one piece: an interrupted job starts again at frame 0)
//	warm_up_frames = 16               # VIDMATTE_WARM_UP_FRAMES: frames a recurrent model (rvm) runs on before a
//	                                  #  resumed segment to rebuild its state
//
//	[limits]
//	upload_bytes = 500000000          # VIDMATTE_MAX_UPLOAD_BYTES, --max-upload-bytes
//	body_bytes = 1048576              # VIDMATTE_MAX_BODY_BYTES, --max-body-bytes
//	fetch_bytes = 500000000           # VIDMATTE_MAX_FETCH_BYTES, --max-fetch-bytes
//	fetch_timeout = "2m"              # VIDMATTE_FETCH_TIMEOUT, --fetch-timeout
//	body_window = "10s"               # VIDMATTE_BODY_WINDOW: a request body must bring
//	body_min_bytes = 16384            # VIDMATTE_BODY_MIN_BYTES  at least this much in every window
//	concurrent_uploads = 4            # VIDMATTE_CONCURRENT_UPLOADS (per key; one more is a 429)
//	max_duration = "1h"               # VIDMATTE_MAX_DURATION: longest video accepted (0 = no limit)
//	max_frames = 216000               # VIDMATTE_MAX_FRAMES: most frames (duration × rate)
//	max_pixels = 8847360              # VIDMATTE_MAX_PIXELS: largest frame, width × height (4096×2160)
//	max_background_pixels = 40000000  # VIDMATTE_MAX_BACKGROUND_PIXELS: largest background image (PNG, JPEG, WebP only)
//
//	[quotas]                          # per key; 0 = none
//	stored_bytes = 10000000000        # VIDMATTE_QUOTA_STORED_BYTES: uploads and outputs kept (over: 413)
//	queued_jobs = 100                 # VIDMATTE_QUOTA_QUEUED_JOBS: queued or processing (over: 429)
//	drafts = 100                      # VIDMATTE_QUOTA_DRAFTS: pending jobs (over: 429)
//
//	[retention]                       # files are deleted after; records and ledger stay
//	uploads = "24h"                   # VIDMATTE_RETAIN_UPLOADS
//	fetched = "24h"                   # VIDMATTE_RETAIN_FETCHED: videos fetched from a video_url
//	outputs = "168h"                  # VIDMATTE_RETAIN_OUTPUTS: from the job's completion
//	backgrounds = "24h"               # VIDMATTE_RETAIN_BACKGROUNDS: from their last use
//	interval = "10m"                  # VIDMATTE_RETENTION_INTERVAL: how often the sweep runs
//
//	[rate_limit]
//	rate = 10.0                       # VIDMATTE_RATE_LIMIT, --rate-limit (requests/s per key)
//	burst = 20                        # VIDMATTE_RATE_BURST, --rate-burst
//
//	[prices]                          # VIDMATTE_PRICES="isnet=10,chroma=1", --price isnet=10
//	isnet = 10.0                      # credits per minute; a model not listed uses its manifest's
//
//	[aliases]                         # VIDMATTE_ALIASES="fast=isnet-small", --alias fast=isnet-small
//	fast = "isnet-small"
type serveConfig struct {
	Listen            string             `toml:"listen"`
	Data              string             `toml:"data"`
	Store             string             `toml:"store"`
	Artifacts         string             `toml:"artifacts"`
	PublicURL         string             `toml:"public_url"`
	MetricsToken      string             `toml:"metrics_token"`
	DefaultModel      string             `toml:"default_model"`
	Workers           int                `toml:"workers"`
	Device            string             `toml:"device"`
	CPUFallback       bool               `toml:"cpu_fallback"`
	Batch             int                `toml:"batch"`
	Threads           int                `toml:"threads"`
	MemoryBudget      int64              `toml:"memory_budget"`
	SessionCache      int                `toml:"session_cache"`
	AllowPrivateFetch bool               `toml:"allow_private_fetch"`
	ShutdownDeadline  duration           `toml:"shutdown_deadline"`
	OutputURLTTL      duration           `toml:"output_url_ttl"`
	IdempotencyLease  duration           `toml:"idempotency_lease"`
	MaxAttempts       int                `toml:"max_attempts"`
	ReapInterval      duration           `toml:"reap_interval"`
	Lease             duration           `toml:"lease"`
	LogFormat         string             `toml:"log_format"`
	LogLevel          string             `toml:"log_level"`
	Engine            engineConfig       `toml:"engine"`
	Limits            limitsConfig       `toml:"limits"`
	Quotas            quotaConfig        `toml:"quotas"`
	Retention         retentionConfig    `toml:"retention"`
	RateLimit         rateConfig         `toml:"rate_limit"`
	Prices            map[string]float64 `toml:"prices"`
	Aliases           map[string]string  `toml:"aliases"`

	// processor, when set, wraps the engine the runner drives: the seam a
	// test uses to hold a job at a known point. Never set from a file.
	processor func(engine.Processor) engine.Processor
}

// engineConfig is how jobs are cut into resumable segments.
type engineConfig struct {
	SegmentSeconds float64 `toml:"segment_seconds"`
	WarmUpFrames   int     `toml:"warm_up_frames"`
}

// segmentLength is the configured segment length (0: not segmented).
func (e engineConfig) segmentLength() time.Duration {
	return time.Duration(e.SegmentSeconds * float64(time.Second))
}

// warmUp is the runner's warm-up: 0 configured is none.
func (e engineConfig) warmUp() int {
	if e.WarmUpFrames == 0 {
		return -1
	}
	return e.WarmUpFrames
}

type limitsConfig struct {
	UploadBytes  int64    `toml:"upload_bytes"`
	BodyBytes    int64    `toml:"body_bytes"`
	FetchBytes   int64    `toml:"fetch_bytes"`
	FetchTimeout duration `toml:"fetch_timeout"`
	BodyWindow   duration `toml:"body_window"`
	BodyMinBytes int64    `toml:"body_min_bytes"`
	// ConcurrentUploads is how many uploads one key may stream at once.
	ConcurrentUploads int `toml:"concurrent_uploads"`
	// The media limits of an upload or a fetched video (0: none).
	MaxDuration duration `toml:"max_duration"`
	MaxFrames   int64    `toml:"max_frames"`
	MaxPixels   int64    `toml:"max_pixels"`
	// MaxBackgroundPixels bounds a background image, width × height.
	MaxBackgroundPixels int64 `toml:"max_background_pixels"`
}

type quotaConfig struct {
	StoredBytes int64 `toml:"stored_bytes"`
	QueuedJobs  int   `toml:"queued_jobs"`
	Drafts      int   `toml:"drafts"`
}

type retentionConfig struct {
	Uploads     duration `toml:"uploads"`
	Fetched     duration `toml:"fetched"`
	Outputs     duration `toml:"outputs"`
	Backgrounds duration `toml:"backgrounds"`
	Interval    duration `toml:"interval"`
}

type rateConfig struct {
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`
}

// duration is a time.Duration written "30s", "2m", "24h" in TOML.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// defaultServeConfig is the configuration before any file, env or flag.
func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:           "127.0.0.1:8080",
		Data:             filepath.Join(models.Home(), "data"),
		Workers:          1,
		Device:           "cpu",
		Batch:            1,
		SessionCache:     models.DefaultSessionCache,
		ShutdownDeadline: duration{30 * time.Second},
		OutputURLTTL:     duration{24 * time.Hour},
		MaxAttempts:      3,
		Engine:           engineConfig{SegmentSeconds: engine.DefaultSegmentLength.Seconds(), WarmUpFrames: engine.DefaultWarmUp},
		ReapInterval:     duration{30 * time.Second},
		Lease:            duration{30 * time.Second},
		LogFormat:        "auto",
		LogLevel:         "info",
		Limits: limitsConfig{
			UploadBytes:  500_000_000,
			BodyBytes:    1 << 20,
			FetchBytes:   500_000_000,
			FetchTimeout: duration{2 * time.Minute},
			MaxDuration:  duration{time.Hour},
			MaxFrames:    216_000,
			MaxPixels:    4096 * 2160,

			MaxBackgroundPixels: 40_000_000,
		},
		Quotas: quotaConfig{StoredBytes: 10_000_000_000, QueuedJobs: 100, Drafts: 100},
		Retention: retentionConfig{
			Uploads:     duration{24 * time.Hour},
			Fetched:     duration{24 * time.Hour},
			Outputs:     duration{7 * 24 * time.Hour},
			Backgrounds: duration{24 * time.Hour},
			Interval:    duration{10 * time.Minute},
		},
		RateLimit: rateConfig{Rate: 10, Burst: 20},
		Prices:    map[string]float64{},
		Aliases:   map[string]string{},
	}
}

// configFlags binds the configuration's flags to a flag set; apply copies
// the flags that were set over a configuration.
type configFlags struct {
	fs     *flag.FlagSet
	config *string
	apply  func(c *serveConfig) error
}

// pairList is a repeatable name=value flag.
type pairList []string

func (p *pairList) String() string     { return strings.Join(*p, ",") }
func (p *pairList) Set(v string) error { *p = append(*p, v); return nil }

// bindConfigFlags adds the flags of every setting (all true) or only of
// --config and --data (the operator's tools).
func bindConfigFlags(fs *flag.FlagSet, all bool) *configFlags {
	d := defaultServeConfig()
	cf := &configFlags{fs: fs}
	cf.config = fs.String("config", "", "TOML configuration `file` (default $VIDMATTE_CONFIG)")
	data := fs.String("data", d.Data, "data `dir`: vidmatte.db, uploads/, outputs/, secret")
	storeURL := fs.String("store", "", "job store: empty for SQLite in the data dir, or a postgres:// `URL` shared by a cluster")
	if !all {
		cf.apply = func(c *serveConfig) error {
			if flagSet(fs, "data") {
				c.Data = *data
			}
			if flagSet(fs, "store") {
				c.Store = *storeURL
			}
			return nil
		}
		return cf
	}
	listen := fs.String("listen", d.Listen, "`address` to listen on")
	artifactsURL := fs.String("artifacts", "", "where uploads and outputs are kept: empty for the data dir, or an s3://BUCKET?endpoint=HOST:PORT `URL`")
	publicURL := fs.String("public-url", "", "base `URL` clients reach the daemon at (for output URLs in webhooks)")
	defModel := fs.String("default-model", "", "model `id` or alias used when a job names none (default: isnet when installed)")
	workers := fs.Int("workers", d.Workers, "jobs processed at once")
	device := fs.String("device", d.Device, "inference device: cpu or cuda")
	fallback := fs.Bool("cpu-fallback", false, "use the CPU when CUDA cannot be loaded, instead of failing")
	batch := fs.Int("batch", d.Batch, "frames per inference call")
	threads := fs.Int("threads", 0, "threads of each job's decoder, encoders and inference (0 = the cores divided among the workers)")
	memBudget := fs.Int64("memory-budget", 0, "`bytes` one job may use for frames, tensors and the model (0 = half the memory divided among the workers)")
	sessionCache := fs.Int("session-cache", d.SessionCache, "inference sessions kept cached (one per model, device and input size)")
	allowPrivate := fs.Bool("allow-private-fetch", false, "allow fetching videos, images and webhooks from private, loopback and link-local addresses")
	deadline := fs.Duration("shutdown-deadline", d.ShutdownDeadline.Duration, "how long running jobs may finish on SIGTERM before they are requeued")
	ttl := fs.Duration("output-url-ttl", d.OutputURLTTL.Duration, "how long a signed output URL stays valid")
	attempts := fs.Int("max-attempts", d.MaxAttempts, "interrupted attempts in a row without progress after which a job fails")
	logFormat := fs.String("log-format", d.LogFormat, "log format: auto (JSON unless stderr is a terminal), json or text")
	logLevel := fs.String("log-level", d.LogLevel, "log level: debug, info, warn or error")
	upload := fs.Int64("max-upload-bytes", d.Limits.UploadBytes, "largest upload")
	body := fs.Int64("max-body-bytes", d.Limits.BodyBytes, "largest JSON request body")
	fetchBytes := fs.Int64("max-fetch-bytes", d.Limits.FetchBytes, "largest remote video or image")
	fetchTimeout := fs.Duration("fetch-timeout", d.Limits.FetchTimeout.Duration, "time limit of one remote fetch")
	rate := fs.Float64("rate-limit", d.RateLimit.Rate, "requests per second per key")
	burst := fs.Int("rate-burst", d.RateLimit.Burst, "requests a key may make at once")
	var prices, aliases pairList
	fs.Var(&prices, "price", "credits per minute of a model, `model=credits` (repeatable)")
	fs.Var(&aliases, "alias", "a model alias, `alias=model` (repeatable)")
	cf.apply = func(c *serveConfig) error {
		var err error
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "data":
				c.Data = *data
			case "store":
				c.Store = *storeURL
			case "artifacts":
				c.Artifacts = *artifactsURL
			case "listen":
				c.Listen = *listen
			case "public-url":
				c.PublicURL = *publicURL
			case "default-model":
				c.DefaultModel = *defModel
			case "workers":
				c.Workers = *workers
			case "device":
				c.Device = *device
			case "cpu-fallback":
				c.CPUFallback = *fallback
			case "batch":
				c.Batch = *batch
			case "threads":
				c.Threads = *threads
			case "memory-budget":
				c.MemoryBudget = *memBudget
			case "session-cache":
				c.SessionCache = *sessionCache
			case "allow-private-fetch":
				c.AllowPrivateFetch = *allowPrivate
			case "shutdown-deadline":
				c.ShutdownDeadline.Duration = *deadline
			case "output-url-ttl":
				c.OutputURLTTL.Duration = *ttl
			case "max-attempts":
				c.MaxAttempts = *attempts
			case "log-format":
				c.LogFormat = *logFormat
			case "log-level":
				c.LogLevel = *logLevel
			case "max-upload-bytes":
				c.Limits.UploadBytes = *upload
			case "max-body-bytes":
				c.Limits.BodyBytes = *body
			case "max-fetch-bytes":
				c.Limits.FetchBytes = *fetchBytes
			case "fetch-timeout":
				c.Limits.FetchTimeout.Duration = *fetchTimeout
			case "rate-limit":
				c.RateLimit.Rate = *rate
			case "rate-burst":
				c.RateLimit.Burst = *burst
			case "price":
				err = errors.Join(err, setPrices(c, prices, "--price"))
			case "alias":
				err = errors.Join(err, setAliases(c, aliases, "--alias"))
			}
		})
		return err
	}
	return cf
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// load builds the configuration: defaults, then the file, then the
// environment, then the flags that were set; and checks it.
func (cf *configFlags) load(getenv func(string) string) (serveConfig, error) {
	c := defaultServeConfig()
	path := *cf.config
	if path == "" {
		path = getenv("VIDMATTE_CONFIG")
	}
	if path != "" {
		if err := loadConfigFile(&c, path); err != nil {
			return c, err
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return c, err
	}
	if err := cf.apply(&c); err != nil {
		return c, usageErrorf("%v", err)
	}
	return c, c.check()
}

// loadConfigFile reads a TOML file over c; unknown keys are an error.
func loadConfigFile(c *serveConfig, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// applyEnv copies the VIDMATTE_* variables that are set over c.
func applyEnv(c *serveConfig, getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	integer := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	int64v := func(name string, dst *int64) {
		if v := getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
				return
			}
			*dst = b
		}
	}
	dur := func(name string, dst *duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration", name, v))
				return
			}
			dst.Duration = d
		}
	}
	str("VIDMATTE_LISTEN", &c.Listen)
	str("VIDMATTE_DATA", &c.Data)
	str("VIDMATTE_STORE", &c.Store)
	str("VIDMATTE_ARTIFACTS", &c.Artifacts)
	str("VIDMATTE_PUBLIC_URL", &c.PublicURL)
	str("VIDMATTE_METRICS_TOKEN", &c.MetricsToken)
	str("VIDMATTE_DEFAULT_MODEL", &c.DefaultModel)
	integer("VIDMATTE_WORKERS", &c.Workers)
	str("VIDMATTE_DEVICE", &c.Device)
	boolean("VIDMATTE_CPU_FALLBACK", &c.CPUFallback)
	integer("VIDMATTE_BATCH", &c.Batch)
	integer("VIDMATTE_THREADS", &c.Threads)
	int64v("VIDMATTE_MEMORY_BUDGET", &c.MemoryBudget)
	integer("VIDMATTE_SESSION_CACHE", &c.SessionCache)
	boolean("VIDMATTE_ALLOW_PRIVATE_FETCH", &c.AllowPrivateFetch)
	dur("VIDMATTE_IDEMPOTENCY_LEASE", &c.IdempotencyLease)
	dur("VIDMATTE_SHUTDOWN_DEADLINE", &c.ShutdownDeadline)
	dur("VIDMATTE_OUTPUT_URL_TTL", &c.OutputURLTTL)
	integer("VIDMATTE_MAX_ATTEMPTS", &c.MaxAttempts)
	dur("VIDMATTE_REAP_INTERVAL", &c.ReapInterval)
	dur("VIDMATTE_LEASE", &c.Lease)
	if v := getenv("VIDMATTE_SEGMENT_SECONDS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VIDMATTE_SEGMENT_SECONDS: %q is not a number", v))
		} else {
			c.Engine.SegmentSeconds = f
		}
	}
	integer("VIDMATTE_WARM_UP_FRAMES", &c.Engine.WarmUpFrames)
	str("VIDMATTE_LOG_FORMAT", &c.LogFormat)
	str("VIDMATTE_LOG_LEVEL", &c.LogLevel)
	int64v("VIDMATTE_MAX_UPLOAD_BYTES", &c.Limits.UploadBytes)
	int64v("VIDMATTE_MAX_BODY_BYTES", &c.Limits.BodyBytes)
	int64v("VIDMATTE_MAX_FETCH_BYTES", &c.Limits.FetchBytes)
	dur("VIDMATTE_FETCH_TIMEOUT", &c.Limits.FetchTimeout)
	dur("VIDMATTE_BODY_WINDOW", &c.Limits.BodyWindow)
	int64v("VIDMATTE_BODY_MIN_BYTES", &c.Limits.BodyMinBytes)
	integer("VIDMATTE_CONCURRENT_UPLOADS", &c.Limits.ConcurrentUploads)
	dur("VIDMATTE_MAX_DURATION", &c.Limits.MaxDuration)
	int64v("VIDMATTE_MAX_FRAMES", &c.Limits.MaxFrames)
	int64v("VIDMATTE_MAX_PIXELS", &c.Limits.MaxPixels)
	int64v("VIDMATTE_MAX_BACKGROUND_PIXELS", &c.Limits.MaxBackgroundPixels)
	int64v("VIDMATTE_QUOTA_STORED_BYTES", &c.Quotas.StoredBytes)
	integer("VIDMATTE_QUOTA_QUEUED_JOBS", &c.Quotas.QueuedJobs)
	integer("VIDMATTE_QUOTA_DRAFTS", &c.Quotas.Drafts)
	dur("VIDMATTE_RETAIN_UPLOADS", &c.Retention.Uploads)
	dur("VIDMATTE_RETAIN_FETCHED", &c.Retention.Fetched)
	dur("VIDMATTE_RETAIN_OUTPUTS", &c.Retention.Outputs)
	dur("VIDMATTE_RETAIN_BACKGROUNDS", &c.Retention.Backgrounds)
	dur("VIDMATTE_RETENTION_INTERVAL", &c.Retention.Interval)
	if v := getenv("VIDMATTE_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VIDMATTE_RATE_LIMIT: %q is not a number", v))
		} else {
			c.RateLimit.Rate = f
		}
	}
	integer("VIDMATTE_RATE_BURST", &c.RateLimit.Burst)
	if v := getenv("VIDMATTE_PRICES"); v != "" {
		errs = append(errs, setPrices(c, strings.Split(v, ","), "VIDMATTE_PRICES"))
	}
	if v := getenv("VIDMATTE_ALIASES"); v != "" {
		errs = append(errs, setAliases(c, strings.Split(v, ","), "VIDMATTE_ALIASES"))
	}
	return errors.Join(errs...)
}

func splitPair(p, where string) (string, string, error) {
	k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" || v == "" {
		return "", "", fmt.Errorf("%s: %q is not name=value", where, p)
	}
	return k, v, nil
}

func setPrices(c *serveConfig, pairs []string, where string) error {
	for _, p := range pairs {
		k, v, err := splitPair(p, where)
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("%s: price %q of %s is not a non-negative number", where, v, k)
		}
		if c.Prices == nil {
			c.Prices = map[string]float64{}
		}
		c.Prices[k] = f
	}
	return nil
}

func setAliases(c *serveConfig, pairs []string, where string) error {
	for _, p := range pairs {
		k, v, err := splitPair(p, where)
		if err != nil {
			return err
		}
		if c.Aliases == nil {
			c.Aliases = map[string]string{}
		}
		c.Aliases[k] = v
	}
	return nil
}

// check refuses settings out of range.
func (c *serveConfig) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		bad("listen: empty")
	}
	if c.Data == "" {
		bad("data: empty")
	}
	if c.Artifacts != "" {
		if _, err := artifacts.ParseS3URL(c.Artifacts); err != nil {
			bad("artifacts: %v", err)
		}
	}
	if s := c.Store; s != "" && s != "sqlite" && !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		bad("store: %q is neither empty (SQLite), sqlite nor a postgres:// URL", s)
	}
	if c.Workers < 1 || c.Workers > 64 {
		bad("workers: %d is not in 1..64", c.Workers)
	}
	if c.Device != "cpu" && c.Device != "cuda" {
		bad("device: %q is not cpu or cuda", c.Device)
	}
	if c.Batch < 1 || c.Batch > 64 {
		bad("batch: %d is not in 1..64", c.Batch)
	}
	if c.Threads < 0 {
		bad("threads: negative")
	}
	if c.MemoryBudget < 0 {
		bad("memory_budget: negative")
	}
	if c.SessionCache < 1 || c.SessionCache > 1024 {
		bad("session_cache: %d is not in 1..1024", c.SessionCache)
	}
	if c.ShutdownDeadline.Duration < 0 {
		bad("shutdown_deadline: negative")
	}
	if c.OutputURLTTL.Duration < time.Minute {
		bad("output_url_ttl: %s is under a minute", c.OutputURLTTL.Duration)
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts: %d is under 1", c.MaxAttempts)
	}
	if c.Lease.Duration < 3*time.Second {
		bad("lease: %s is under 3 s", c.Lease.Duration)
	}
	if c.Engine.SegmentSeconds < 0 || (c.Engine.SegmentSeconds > 0 && c.Engine.SegmentSeconds < 0.1) || c.Engine.SegmentSeconds > 3600 {
		bad("engine.segment_seconds: %g is not 0 or between 0.1 and 3600", c.Engine.SegmentSeconds)
	}
	if c.Engine.WarmUpFrames < 0 || c.Engine.WarmUpFrames > 1000 {
		bad("engine.warm_up_frames: %d is not between 0 and 1000", c.Engine.WarmUpFrames)
	}
	if c.ReapInterval.Duration < time.Second {
		bad("reap_interval: %s is under a second", c.ReapInterval.Duration)
	}
	if c.LogFormat != "auto" && c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log_format: %q is not auto, json or text", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.Limits.UploadBytes < 1 || c.Limits.BodyBytes < 1 || c.Limits.FetchBytes < 1 {
		bad("limits: sizes must be positive")
	}
	if c.Limits.FetchTimeout.Duration <= 0 {
		bad("limits.fetch_timeout: must be positive")
	}
	if c.Limits.MaxBackgroundPixels < 1 || c.Limits.MaxBackgroundPixels > 1<<31-1 {
		bad("limits.max_background_pixels: %d is not in 1..%d", c.Limits.MaxBackgroundPixels, 1<<31-1)
	}
	if c.Limits.MaxDuration.Duration < 0 || c.Limits.MaxFrames < 0 || c.Limits.MaxPixels < 0 {
		bad("limits: max_duration, max_frames and max_pixels must not be negative")
	}
	if c.Quotas.StoredBytes < 0 || c.Quotas.QueuedJobs < 0 || c.Quotas.Drafts < 0 {
		bad("quotas: must not be negative")
	}
	for name, d := range map[string]time.Duration{"uploads": c.Retention.Uploads.Duration, "fetched": c.Retention.Fetched.Duration,
		"outputs": c.Retention.Outputs.Duration, "backgrounds": c.Retention.Backgrounds.Duration, "interval": c.Retention.Interval.Duration} {
		if d < time.Minute {
			bad("retention.%s: %s is under a minute", name, d)
		}
	}
	if c.RateLimit.Rate <= 0 || c.RateLimit.Burst < 1 {
		bad("rate_limit: rate and burst must be positive")
	}
	for m, p := range c.Prices {
		if p < 0 {
			bad("prices.%s: negative", m)
		}
	}
	return errors.Join(errs...)
}

// jobThreads is the thread budget of one job, for its decoder, its
// encoders and its inference each: threads, or the machine's cores
// divided among the workers (at least one). With one worker and threads
// 0 it is 0: each library picks its own (all cores), as for one job.
// Without a budget, each of a job's libraries takes every core and
// workers > 1 oversubscribes the machine workers × 3 times over.
func (c *serveConfig) jobThreads() int {
	if c.Threads > 0 || c.Workers <= 1 {
		return c.Threads
	}
	return max(runtime.NumCPU()/c.Workers, 1)
}

// jobMemoryBudget is the memory budget of one job: memory_budget, or
// half the machine's memory divided among the jobs run at once.
func (c *serveConfig) jobMemoryBudget() int64 {
	if c.MemoryBudget > 0 {
		return c.MemoryBudget
	}
	return models.DefaultMemoryBudget() / int64(max(c.Workers, 1))
}
