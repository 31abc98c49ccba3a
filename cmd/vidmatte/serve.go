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

	"vidmatte/api"
	"vidmatte/codec"
	"vidmatte/engine"
	"vidmatte/models"
	"vidmatte/store"
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
	api    *api.Server
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
	if d.db, err = openStore(cfg.Data); err != nil {
		return nil, err
	}
	secret, err := api.LoadSecret(cfg.Data)
	if err != nil {
		return nil, err
	}
	device, err := models.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	d.rt, err = models.NewRuntime(models.RuntimeOptions{Threads: cfg.Threads, AllowCPUFallback: cfg.CPUFallback, Logger: d.log})
	if err != nil {
		return nil, err
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
	eng, err := engine.New(engine.Config{Runtime: d.rt, Registry: reg, Device: device, Batch: cfg.Batch, Logger: d.log})
	if err != nil {
		return nil, err
	}
	metrics := api.NewMetrics()
	outputs := filepath.Join(cfg.Data, "outputs")
	var processor engine.Processor = eng
	if cfg.processor != nil {
		processor = cfg.processor(eng)
	}
	d.runner, err = engine.NewRunner(engine.RunnerConfig{
		Jobs:        d.db,
		Processor:   processor,
		OutputDir:   outputs,
		Slots:       cfg.Workers,
		MaxAttempts: cfg.MaxAttempts,
		Metrics:     metrics,
		Logger:      d.log,
	})
	if err != nil {
		return nil, err
	}
	d.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	public := publicURL(cfg.PublicURL, d.ln.Addr())
	d.api, err = api.New(api.Config{
		Store:        d.db,
		Catalog:      catalog,
		Prober:       api.ProberFunc(probeMedia),
		Runner:       d.runner,
		DataDir:      cfg.Data,
		Secret:       secret,
		PublicURL:    public,
		MetricsToken: cfg.MetricsToken,
		Limits: api.Limits{
			MaxUploadBytes:    cfg.Limits.UploadBytes,
			MaxBodyBytes:      cfg.Limits.BodyBytes,
			MaxFetchBytes:     cfg.Limits.FetchBytes,
			FetchTimeout:      cfg.Limits.FetchTimeout.Duration,
			BodyWindow:        cfg.Limits.BodyWindow.Duration,
			BodyMinBytes:      cfg.Limits.BodyMinBytes,
			ConcurrentUploads: cfg.Limits.ConcurrentUploads,
		},
		RateLimit:         cfg.RateLimit.Rate,
		RateBurst:         cfg.RateLimit.Burst,
		AllowPrivateFetch: cfg.AllowPrivateFetch,
		OutputURLTTL:      cfg.OutputURLTTL.Duration,
		IdempotencyLease:  cfg.IdempotencyLease.Duration,
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
	d.runner.SetEvents(d.api, d.api.FetchBackground)
	d.srv = &http.Server{
		Handler:           d.api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	return d, nil
}

// buildCatalog offers the registry's models whose files are present (built
// and generated ones always), priced by the configuration or else by their
// manifests, with the configured aliases and default model.
func buildCatalog(reg *models.Registry, cfg serveConfig, log *slog.Logger) (*api.Catalog, []api.ModelInfo, error) {
	var offered []api.ModelInfo
	for _, m := range reg.List() {
		if st := reg.Check(m); !st.Present {
			log.Info("model not installed; not offered", slog.String("model", m.ID))
			continue
		}
		price := m.CreditsPerMinute
		if p, ok := cfg.Prices[m.ID]; ok {
			price = p
		}
		offered = append(offered, api.ModelInfo{ID: m.ID, Name: m.Name, Description: m.Description,
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
	c, err := api.NewCatalog(offered, cfg.Aliases, def)
	return c, offered, err
}

// probeMedia adapts codec.ProbeContext to the api: the request's context
// interrupts the probe.
func probeMedia(ctx context.Context, path string) (*api.MediaInfo, error) {
	info, err := codec.ProbeContext(ctx, path)
	if err != nil {
		return nil, err
	}
	return &api.MediaInfo{
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
	bg.Add(1)
	go func() { defer bg.Done(); _ = d.api.Run(bgCtx) }()

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
