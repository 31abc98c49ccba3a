package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
	"vidmatte"

	"vidmatte/api"
	"vidmatte/artifacts"
	"vidmatte/codec"
	"vidmatte/engine"
	"vidmatte/fetch"
	"vidmatte/models"
	"vidmatte/service"
	"vidmatte/store"
	"vidmatte/webhook"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the daemon: the HTTP API and the job runner",
		run:     runServe,
	})
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cf := bindConfigFlags(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vidmatte serve [flags]")
		fmt.Fprintln(stderr, "Flags override VIDMATTE_* environment variables, which override the config file.")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("serve takes no arguments")
	}
	cfg, err := cf.load(os.Getenv)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, "vidmatte: listening on http://%s (data %s)\n", d.Addr(), cfg.Data)
	fmt.Fprintf(stdout, "create a key: vidmatte keys create --data %s --name NAME --credits 100\n", cfg.Data)
	return d.Run(ctx)
}

// daemon is the wired daemon: store, models, engine, runner, api and the
// HTTP server. Run serves until its context ends, then shuts down in two
// stages; Close releases what it holds. Tests run it in-process.
type daemon struct {
	cfg    serveConfig
	log    *slog.Logger
	lock   *dataLock
	db     *store.DB
	rt     *models.Runtime
	svc    *service.Service
	api    *api.Server
	hooks  *webhook.Deliverer
	runner *engine.Runner
	srv    *http.Server
	ln     net.Listener

	closeOnce sync.Once
}

// newLogger makes the daemon's logger: JSON unless the format is text, or
// auto and w is a terminal.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" || (format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newDaemon wires everything and starts listening; nothing runs until Run.
func newDaemon(cfg serveConfig, logw io.Writer) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: newLogger(logw, cfg.LogFormat, cfg.LogLevel)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.lock, err = lockDataDir(cfg.Data); err != nil {
		return nil, err
	}
	if d.db, err = openStore(cfg); err != nil {
		return nil, err
	}
	d.db.SetLease(cfg.Lease.Duration)
	d.db.SetQuotas(vidmatte.Quotas{StoredBytes: cfg.Quotas.StoredBytes, QueuedJobs: cfg.Quotas.QueuedJobs, Drafts: cfg.Quotas.Drafts})
	// Output URLs are signed with the data dir's secret; daemons sharing a
	// store share the store's, so any of them honours a URL another signed.
	secret, err := api.LoadSecret(cfg.Data)
	if d.db.Backend() == "postgres" {
		secret, err = d.db.Secret(context.Background(), "output-urls", 32)
	}
	if err != nil {
		return nil, err
	}
	device, err := models.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	threads := cfg.jobThreads()
	d.rt, err = models.NewRuntime(models.RuntimeOptions{Threads: threads, AllowCPUFallback: cfg.CPUFallback, Logger: d.log,
		MemoryBudget: cfg.jobMemoryBudget(), SessionCache: cfg.SessionCache})
	if err != nil {
		return nil, err
	}
	// A daemon asked for CUDA finds out now whether it can have it: without
	// the fallback it does not start (rather than fail every job), with it
	// it says once, here, that jobs will run on the CPU.
	if device == models.CUDA {
		if cerr := d.rt.CheckCUDA(); cerr != nil {
			if !cfg.CPUFallback {
				return nil, fmt.Errorf("%w (set cpu_fallback = true, VIDMATTE_CPU_FALLBACK=1 or --cpu-fallback to run on the CPU instead)", cerr)
			}
			d.log.Warn("CUDA requested but unavailable; jobs run on the CPU", slog.String("reason", cerr.Error()))
		}
	}
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		return nil, err
	}
	for _, p := range reg.Problems() {
		d.log.Warn("model registry", slog.Any("problem", p))
	}
	catalog, offered, err := buildCatalog(reg, cfg, d.log)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Config{Runtime: d.rt, Registry: reg, Device: device, Batch: cfg.Batch,
		DecoderThreads: threads, Encoder: codec.EncoderSettings{Threads: threads},
		MaxBackgroundPixels: int(cfg.Limits.MaxBackgroundPixels), Logger: d.log})
	if err != nil {
		return nil, err
	}
	metrics := api.NewMetrics()
	outputs := filepath.Join(cfg.Data, "outputs")
	var processor engine.Processor = eng
	if cfg.processor != nil {
		processor = cfg.processor(eng)
	}
	files, err := openFiles(cfg)
	if err != nil {
		return nil, err
	}
	d.runner, err = engine.NewRunner(engine.RunnerConfig{
		Files:       files,
		Jobs:        d.db,
		Processor:   processor,
		OutputDir:   outputs,
		Slots:       cfg.Workers,
		MaxAttempts: cfg.MaxAttempts,
		// Outcome writes that fail for a passing reason are retried
		// (engine defaults); a job left processing anyway is reaped.
		Reaper:        d.db,
		ReapInterval:  cfg.ReapInterval.Duration,
		SegmentLength: cfg.Engine.segmentLength(),
		WarmUp:        cfg.Engine.warmUp(),
		// On a shared store (PostgreSQL) other daemons may hold running
		// jobs: only those whose lease ran out are taken back.
		Shared:            d.db.Backend() == "postgres",
		HeartbeatInterval: cfg.Lease.Duration / 3,
		RescueInterval:    cfg.Lease.Duration / 2,
		Metrics:           metrics,
		Logger:            d.log,
	})
	if err != nil {
		return nil, err
	}
	d.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	public := publicURL(cfg.PublicURL, d.ln.Addr())
	fetcher := fetch.New(fetch.Options{AllowPrivate: cfg.AllowPrivateFetch, Timeout: cfg.Limits.FetchTimeout.Duration})
	d.svc, err = service.New(service.Config{
		Store:         d.db,
		Catalog:       catalog,
		Prober:        service.ProberFunc(probeMedia),
		Fetcher:       fetcher,
		Files:         files,
		Runner:        d.runner,
		DataDir:       cfg.Data,
		MaxFetchBytes: cfg.Limits.FetchBytes,
		Media: vidmatte.MediaLimits{
			MaxDurationSec: cfg.Limits.MaxDuration.Seconds(),
			MaxFrames:      cfg.Limits.MaxFrames,
			MaxPixels:      cfg.Limits.MaxPixels,
		},
		Retention: service.Retention{
			Uploads:     cfg.Retention.Uploads.Duration,
			Fetched:     cfg.Retention.Fetched.Duration,
			Outputs:     cfg.Retention.Outputs.Duration,
			Backgrounds: cfg.Retention.Backgrounds.Duration,
			Interval:    cfg.Retention.Interval.Duration,
		},
		Logger: d.log,
	})
	if err != nil {
		return nil, err
	}
	d.api, err = api.New(api.Config{
		Store:        d.db,
		Service:      d.svc,
		Files:        files,
		Secret:       secret,
		PublicURL:    public,
		MetricsToken: cfg.MetricsToken,
		Limits: api.Limits{
			MaxUploadBytes:    cfg.Limits.UploadBytes,
			MaxBodyBytes:      cfg.Limits.BodyBytes,
			BodyWindow:        cfg.Limits.BodyWindow.Duration,
			BodyMinBytes:      cfg.Limits.BodyMinBytes,
			ConcurrentUploads: cfg.Limits.ConcurrentUploads,
		},
		RateLimit:        cfg.RateLimit.Rate,
		RateBurst:        cfg.RateLimit.Burst,
		OutputURLTTL:     cfg.OutputURLTTL.Duration,
		IdempotencyLease: cfg.IdempotencyLease.Duration,
		ModelsReady: func(context.Context) error {
			if len(offered) == 0 {
				return errors.New("no model is installed")
			}
			m, err := reg.Get(catalog.Default())
			if err != nil {
				return err
			}
			if st := reg.Check(m); !st.Present {
				return fmt.Errorf("the file of model %s is missing", m.ID)
			}
			return nil
		},
		Logger:  d.log,
		Metrics: metrics,
	})
	if err != nil {
		return nil, err
	}
	d.hooks, err = webhook.New(webhook.Config{
		Store:   d.db,
		Client:  fetcher.HTTP(),
		Render:  d.api.RenderJob,
		Observe: metrics.ObserveWebhook,
		Logger:  d.log,
	})
	if err != nil {
		return nil, err
	}
	d.runner.SetEvents(d.hooks, d.svc.FetchBackground)
	d.srv = &http.Server{
		Handler:           d.api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	// Streams of job changes never end by themselves: end them when the
	// server shuts down, so Shutdown does not wait for them.
	d.srv.RegisterOnShutdown(d.api.EndStreams)
	return d, nil
}

// buildCatalog offers the registry's models whose files are present (built
// and generated ones always), priced by the configuration or else by their
// manifests, with the configured aliases and default model.
func buildCatalog(reg *models.Registry, cfg serveConfig, log *slog.Logger) (*service.Catalog, []service.ModelInfo, error) {
	var offered []service.ModelInfo
	for _, m := range reg.List() {
		if st := reg.Check(m); !st.Present {
			log.Info("model not installed; not offered", slog.String("model", m.ID))
			continue
		}
		price := m.CreditsPerMinute
		if p, ok := cfg.Prices[m.ID]; ok {
			price = p
		}
		offered = append(offered, service.ModelInfo{ID: m.ID, Name: m.Name, Description: m.Description,
			Aliases: m.Aliases, CreditsPerMinute: price})
	}
	for id := range cfg.Prices {
		if _, err := reg.Get(id); err != nil {
			return nil, nil, fmt.Errorf("prices: %w", err)
		}
	}
	def := cfg.DefaultModel
	if def == "" {
		def = engine.DefaultModel
		found := false
		for _, m := range offered {
			found = found || m.ID == def
		}
		if !found {
			def = ""
		}
	}
	c, err := service.NewCatalog(offered, cfg.Aliases, def)
	return c, offered, err
}

// probeMedia adapts codec.ProbeContext to the service: the request's
// context interrupts the probe.
func probeMedia(ctx context.Context, path string) (*vidmatte.MediaInfo, error) {
	info, err := codec.ProbeContext(ctx, path)
	if err != nil {
		return nil, err
	}
	return &vidmatte.MediaInfo{
		DurationSec: info.Duration.Seconds(),
		Width:       info.Width,
		Height:      info.Height,
		FPS:         info.FrameRate.Float64(),
		HasAudio:    info.HasAudio,
	}, nil
}

// Addr is the address the daemon listens on.
func (d *daemon) Addr() string { return d.ln.Addr().String() }

// Run serves and runs jobs until ctx ends, then shuts down in two stages:
// /health turns 503 and claiming stops; running jobs may finish until the
// shutdown deadline; then they are canceled and requeued. The HTTP server
// and the webhook loop stop last.
func (d *daemon) Run(ctx context.Context) error {
	bgCtx, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); _ = d.api.Run(bgCtx) }()
	go func() { defer bg.Done(); d.hooks.Run(bgCtx) }()
	go func() { defer bg.Done(); d.svc.RunRetention(bgCtx) }()

	runnerCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	runnerErr := make(chan error, 1)
	go func() { runnerErr <- d.runner.Run(runnerCtx) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- d.srv.Serve(d.ln) }()
	d.log.Info("daemon started", slog.String("addr", d.Addr()), slog.String("data", d.cfg.Data),
		slog.Int("workers", d.cfg.Workers), slog.String("device", d.cfg.Device))

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serving: %w", err)
	case err = <-runnerErr:
		if err != nil {
			err = fmt.Errorf("runner: %w", err)
		}
		runnerErr <- err
	}
	d.api.SetDraining(true)
	d.log.Info("shutting down: no new jobs are claimed; running jobs may finish",
		slog.Duration("deadline", d.cfg.ShutdownDeadline.Duration), slog.Int("running", d.runner.Running()))
	sdCtx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownDeadline.Duration)
	_ = d.runner.Shutdown(sdCtx)
	cancel()
	stopRunner()
	if rerr := <-runnerErr; err == nil && rerr != nil {
		err = fmt.Errorf("runner: %w", rerr)
	}
	httpCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := d.srv.Shutdown(httpCtx); serr != nil {
		d.log.Warn("closing connections", slog.Any("error", serr))
	}
	cancel()
	stopBg()
	bg.Wait()
	d.log.Info("daemon stopped")
	return err
}

// Close releases the listener, the runtime and the store.
func (d *daemon) Close() error {
	var err error
	d.closeOnce.Do(func() {
		if d.ln != nil {
			d.ln.Close()
		}
		if d.rt != nil {
			err = errors.Join(err, d.rt.Close())
		}
		if d.db != nil {
			err = errors.Join(err, d.db.Close())
		}
		err = errors.Join(err, d.lock.Close())
	})
	return err
}

// publicURL is the base URL of output URLs: the configured one, or one
// derived from the listener. A wildcard address (":8080", "[::]:8080",
// "0.0.0.0:8080") is not a place a client can reach, so it is replaced by
// the machine's host name (localhost when that is unknown).
func publicURL(configured string, addr net.Addr) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// openFiles opens where uploads and outputs are kept: the data dir, or the
// configured S3 bucket (copies for FFmpeg go to the data dir's scratch/).
func openFiles(cfg serveConfig) (*artifacts.Files, error) {
	if cfg.Artifacts == "" {
		return artifacts.NewFiles(nil, "")
	}
	o, err := artifacts.ParseS3URL(cfg.Artifacts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s3, err := artifacts.NewS3(ctx, o)
	if err != nil {
		return nil, err
	}
	return artifacts.NewFiles(s3, filepath.Join(cfg.Data, "scratch"))
}
