package models

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Device is where a model runs.
type Device string

// The devices a model can run on.
const (
	CPU  Device = "cpu"
	CUDA Device = "cuda"
)

// Devices lists the devices vidmatte knows, in order of preference.
var Devices = []Device{CPU, CUDA}

// ParseDevice returns the device s names ("" is CPU).
func ParseDevice(s string) (Device, error) {
	switch Device(strings.ToLower(strings.TrimSpace(s))) {
	case "", CPU:
		return CPU, nil
	case CUDA, "gpu":
		return CUDA, nil
	}
	return "", fmt.Errorf("unknown device %q (valid: cpu, cuda)", s)
}

// ErrCUDAUnavailable is in the chain of every error that says CUDA cannot
// be used; the rest of the message says why.
var ErrCUDAUnavailable = errors.New("CUDA is unavailable")

// The CUDA execution provider's libraries, which must sit beside the core
// library and come from the same ONNX Runtime release.
const (
	providersSharedLib = "libonnxruntime_providers_shared.so"
	providersCUDALib   = "libonnxruntime_providers_cuda.so"
)

// nvidiaDriverFile exists when the NVIDIA kernel driver is loaded. A
// variable so tests can point it elsewhere.
var nvidiaDriverFile = "/proc/driver/nvidia/version"

// RuntimeOptions configures a Runtime.
type RuntimeOptions struct {
	// LibraryPath is the ONNX Runtime shared library; "" means
	// DefaultLibraryPath().
	LibraryPath string
	// Threads is the number of intra-op threads of each session; 0 leaves
	// ONNX Runtime's default (one per physical core).
	Threads int
	// AllowCPUFallback makes Load log why CUDA cannot be used and load the
	// model on the CPU, instead of failing.
	AllowCPUFallback bool
	// Logger receives the runtime's messages; nil discards them.
	Logger *slog.Logger
	// AllowSpinning lets ONNX Runtime's worker threads busy-wait between
	// runs. Off by default: the engine's decode and encode stages share
	// the CPU with inference, and spinning threads take it from them.
	AllowSpinning bool
	// SessionCache is how many sessions the runtime keeps cached (one per
	// model, device, input size and batch); 0 means DefaultSessionCache.
	// The least recently used idle session is destroyed to make room; a
	// session in use by a loaded Model is never destroyed, only dropped
	// from the cache, and destroyed when its last Model is closed.
	SessionCache int
	// MemoryBudget is the most bytes one job's model side may need (see
	// EstimateMemory): Load clamps the batch to fit it and refuses a job
	// that does not fit even at batch 1. 0 means DefaultMemoryBudget().
	MemoryBudget int64
}

// DefaultSessionCache is the session cache's capacity when
// RuntimeOptions.SessionCache is 0.
const DefaultSessionCache = 8

// The ONNX Runtime environment is process-wide: onnxruntime_go keeps one,
// and ONNX Runtime itself expects one per process. It is created by the
// first NewRuntime and kept for the life of the process (re-creating an
// environment after releasing it is not reliable in ONNX Runtime), so
// Runtime.Close releases sessions, not the environment.
var env struct {
	mu       sync.Mutex
	path     string // the library path it was initialised with
	realPath string // the same, with links resolved
	version  string
}

// Runtime is the ONNX Runtime environment (initialised once per process,
// however many Runtimes there are) and a cache of sessions keyed by model,
// device, input shape and batch. It is safe for concurrent use.
type Runtime struct {
	opts    RuntimeOptions
	libPath string
	version string
	log     *slog.Logger

	// runMu is held for reading by every inference and session creation,
	// and for writing by Close, so Close waits for runs in flight.
	runMu  sync.RWMutex
	closed bool

	mu       sync.Mutex
	sessions map[sessionKey]*session
	// lru orders the cached sessions, most recently used first.
	lru      *list.List
	capacity int
	budget   int64
	// live counts sessions created and not yet destroyed (cached, or
	// evicted and still held); created and destroyed count them all.
	live, created, destroyed int
	// all holds every live session, cached or not.
	all map[*session]struct{}
	// cuda caches the outcome of the CUDA check: checked once, then every
	// Load that asks for CUDA gets the same answer.
	cudaChecked bool
	cudaErr     error
}

// NewRuntime loads ONNX Runtime (once per process) and returns a Runtime.
// A missing or incompatible library is an error that says where it looked.
func NewRuntime(o RuntimeOptions) (*Runtime, error) {
	if o.Threads < 0 {
		return nil, fmt.Errorf("models: negative thread count %d", o.Threads)
	}
	if o.SessionCache < 0 {
		return nil, fmt.Errorf("models: negative session cache size %d", o.SessionCache)
	}
	if o.MemoryBudget < 0 {
		return nil, fmt.Errorf("models: negative memory budget %d", o.MemoryBudget)
	}
	capacity := o.SessionCache
	if capacity == 0 {
		capacity = DefaultSessionCache
	}
	budget := o.MemoryBudget
	if budget == 0 {
		budget = DefaultMemoryBudget()
	}
	path, from := o.LibraryPath, "RuntimeOptions.LibraryPath"
	if path == "" {
		path = DefaultLibraryPath()
		from = "the default, " + filepath.Join("$VIDMATTE_HOME", "lib", "libonnxruntime.so.1")
		if os.Getenv("VIDMATTE_ORT_LIB") != "" {
			from = "$VIDMATTE_ORT_LIB"
		}
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	version, err := initEnvironment(path, from)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Runtime{
		opts:     o,
		libPath:  path,
		version:  version,
		log:      log,
		sessions: map[sessionKey]*session{},
		lru:      list.New(),
		all:      map[*session]struct{}{},
		capacity: capacity,
		budget:   budget,
	}, nil
}

func initEnvironment(path, from string) (string, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("models: ONNX Runtime library not found at %s (from %s); run scripts/setup, or set VIDMATTE_ORT_LIB or VIDMATTE_HOME", path, from)
	case err != nil:
		return "", fmt.Errorf("models: ONNX Runtime library at %s (from %s): %w", path, from, err)
	case st.IsDir():
		return "", fmt.Errorf("models: ONNX Runtime library path %s (from %s) is a folder, not the library file", path, from)
	}
	real, rerr := filepath.EvalSymlinks(path)
	if ort.IsInitialized() {
		if path == env.path || (rerr == nil && real == env.realPath) {
			return env.version, nil
		}
		return "", fmt.Errorf("models: ONNX Runtime is already loaded in this process from %s; cannot also load %s (from %s)", env.path, path, from)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		msg := cleanORTMessage(err.Error())
		switch {
		case strings.Contains(msg, "OrtGetApiBase"):
			return "", fmt.Errorf("models: %s (from %s) is not an ONNX Runtime library: %s", path, from, msg)
		case strings.Contains(msg, "ORT API base"):
			return "", fmt.Errorf("models: ONNX Runtime at %s (from %s) is incompatible: vidmatte needs a release that provides C API version %d (ONNX Runtime 1.%d or newer; 1.30.0 is the tested one)", path, from, ortAPIVersion, ortAPIVersion)
		default:
			return "", fmt.Errorf("models: cannot load ONNX Runtime from %s (from %s): %s", path, from, msg)
		}
	}
	env.path = path
	env.realPath = real
	env.version = ort.GetVersion()
	return env.version, nil
}

// ortAPIVersion is the ONNX Runtime C API version onnxruntime_go v1.27.0
// asks for.
const ortAPIVersion = 24

// Version returns the loaded ONNX Runtime's version, e.g. "1.30.0".
func (rt *Runtime) Version() string { return rt.version }

// LibraryPath returns the ONNX Runtime library this runtime uses.
func (rt *Runtime) LibraryPath() string { return rt.libPath }

// Close releases every cached session, after waiting for runs in flight.
// Models loaded from the runtime cannot run afterwards. The process-wide
// ONNX Runtime environment stays loaded.
func (rt *Runtime) Close() error {
	rt.runMu.Lock()
	defer rt.runMu.Unlock()
	if rt.closed {
		return nil
	}
	rt.closed = true
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var errs []error
	for s := range rt.all {
		if err := rt.destroyLocked(s); err != nil {
			errs = append(errs, err)
		}
	}
	clear(rt.sessions)
	rt.lru.Init()
	return errors.Join(errs...)
}

// MemoryBudget returns the most bytes one job's model side may need.
func (rt *Runtime) MemoryBudget() int64 { return rt.budget }

// SessionCapacity returns how many sessions the cache keeps.
func (rt *Runtime) SessionCapacity() int { return rt.capacity }

// SessionStats counts a runtime's sessions.
type SessionStats struct {
	Cached    int // in the cache
	Live      int // not destroyed: the cached ones and evicted ones still in use
	InUse     int // held by at least one open Model
	Created   int // ever created (kept ones only: a duplicate made by a race is not counted)
	Destroyed int // ever destroyed
}

// Stats returns the runtime's session counts.
func (rt *Runtime) Stats() SessionStats {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st := SessionStats{Cached: len(rt.sessions), Live: rt.live, Created: rt.created, Destroyed: rt.destroyed}
	for s := range rt.all {
		if s.refs > 0 {
			st.InUse++
		}
	}
	return st
}

// CheckCUDA reports whether CUDA sessions can be created: nil, or an error
// wrapping ErrCUDAUnavailable that says why. The cheap checks (provider
// libraries present, NVIDIA driver loaded) come before asking ONNX Runtime.
// The answer is computed once per Runtime.
func (rt *Runtime) CheckCUDA() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.cudaChecked {
		rt.cudaErr = rt.checkCUDA()
		rt.cudaChecked = true
	}
	return rt.cudaErr
}

func (rt *Runtime) checkCUDA() error {
	dir := filepath.Dir(rt.libPath)
	var missing []string
	for _, lib := range []string{providersSharedLib, providersCUDALib} {
		if _, err := os.Stat(filepath.Join(dir, lib)); err != nil {
			missing = append(missing, lib)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the CUDA provider libraries are missing from %s (%s); they must sit beside %s and come from the same ONNX Runtime release (%s): on a GPU machine, scripts/setup --cuda installs them",
			ErrCUDAUnavailable, dir, strings.Join(missing, ", "), filepath.Base(rt.libPath), rt.version)
	}
	// ONNX Runtime does not check that a provider library comes from its
	// own release, and one from another release can crash the process
	// when it is loaded: check the release the library names first.
	if found, err := providerVersions(filepath.Join(dir, providersCUDALib)); err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrCUDAUnavailable, providersCUDALib, err)
	} else if len(found) > 0 && !slices.Contains(found, rt.version) {
		return fmt.Errorf("%w: %s in %s is from ONNX Runtime %s, the core library %s is %s: install the provider libraries of release %s beside it (scripts/setup --cuda)",
			ErrCUDAUnavailable, providersCUDALib, dir, strings.Join(found, ", "), filepath.Base(rt.libPath), rt.version, rt.version)
	}
	if _, err := os.Stat(nvidiaDriverFile); err != nil {
		return fmt.Errorf("%w: no NVIDIA driver is loaded (%s is absent): this machine has no usable GPU", ErrCUDAUnavailable, nvidiaDriverFile)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("%w: creating session options: %s", ErrCUDAUnavailable, cleanORTMessage(err.Error()))
	}
	defer opts.Destroy()
	return appendCUDA(opts)
}

// providerVersions returns the ONNX Runtime release numbers ("1.29.0")
// that a provider library carries as NUL-terminated strings: a release's
// CUDA provider holds its own version string, and no other of that form.
// A file with none (not a real library, or a build that does not embed
// it) gives nil, and the check is left to ONNX Runtime.
func providerVersions(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const chunk = 1 << 20
	const keep = 16 // longer than "\x001.999.999\x00": a match across chunks is seen whole
	buf := make([]byte, keep+chunk)
	var found []string
	n := 0 // bytes of buf in use
	for {
		m, err := io.ReadFull(f, buf[n:])
		n += m
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return nil, err
		}
		data := buf[:n]
		// Matches starting in the kept tail are found in the next round,
		// unless this is the last one.
		limit := n - keep
		if eof {
			limit = n
		}
		for i := 0; i < limit; {
			j := bytes.Index(data[i:], []byte("\x001."))
			if j < 0 || i+j >= limit {
				break
			}
			start := i + j + 1
			if v, ok := releaseString(data[start:]); ok && !slices.Contains(found, v) {
				found = append(found, v)
			}
			i = start
		}
		if eof {
			return found, nil
		}
		n = copy(buf, data[n-keep:])
	}
}

// releaseString reports whether b starts with a NUL-terminated "1.N.N"
// (one to three digits each) and returns it.
func releaseString(b []byte) (string, bool) {
	end := bytes.IndexByte(b[:min(len(b), 13)], 0)
	if end < 0 {
		return "", false
	}
	parts := strings.Split(string(b[:end]), ".")
	if len(parts) != 3 || parts[0] != "1" {
		return "", false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return "", false
		}
	}
	return string(b[:end]), true
}

// appendCUDA adds the CUDA execution provider to opts, turning ONNX
// Runtime's failure into an error that says what is wrong.
func appendCUDA(opts *ort.SessionOptions) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrCUDAUnavailable, explainCUDA(err))
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": "0"}); err != nil {
		return fmt.Errorf("%w: %s", ErrCUDAUnavailable, explainCUDA(err))
	}
	if err := opts.AppendExecutionProviderCUDA(cuda); err != nil {
		return fmt.Errorf("%w: %s", ErrCUDAUnavailable, explainCUDA(err))
	}
	return nil
}

// explainCUDA prefixes ONNX Runtime's CUDA error with the likely cause.
func explainCUDA(err error) string {
	msg := cleanORTMessage(err.Error())
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "libcudart") || strings.Contains(low, "libcublas") || strings.Contains(low, "libcudnn") || strings.Contains(low, "libcufft") || strings.Contains(low, "libcurand"):
		return "the CUDA or cuDNN runtime libraries the provider needs cannot be loaded (install the CUDA and cuDNN versions this ONNX Runtime release was built for): " + msg
	case strings.Contains(low, "version") || strings.Contains(low, "undefined symbol"):
		return "the CUDA provider library does not match the core library's ONNX Runtime version: " + msg
	case strings.Contains(low, "no cuda-capable device") || strings.Contains(low, "cuda driver") || strings.Contains(low, "cudaerrornodevice") || strings.Contains(low, "insufficient driver"):
		return "no usable GPU or driver: " + msg
	}
	return "the CUDA provider failed to load: " + msg
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// cleanORTMessage strips terminal colour codes and surrounding space from
// an ONNX Runtime message.
func cleanORTMessage(s string) string {
	return strings.TrimSpace(ansiEscape.ReplaceAllString(s, ""))
}

// ortError wraps an ONNX Runtime error with what was being done.
func ortError(what string, err error) error {
	return fmt.Errorf("%s: %s", what, cleanORTMessage(err.Error()))
}

// sessionKey identifies a cached session.
type sessionKey struct {
	source string // the model file, or "builtin:<id>" for generated graphs
	device Device
	width  int
	height int
	batch  int
	// The graph rewritten to take and give bytes (onnx.ByteImageIO).
	byteIn, byteOut bool
}

// session is one ONNX Runtime session, in the cache or evicted from it
// and still in use. Its refs, elem, evicted and destroyed are guarded by
// the Runtime's mu.
type session struct {
	dyn     *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
	device  Device
	key     sessionKey

	// refs counts the open Models that use the session. A session with
	// refs > 0 is never destroyed; an evicted one is destroyed when refs
	// drops to 0.
	refs      int
	elem      *list.Element // its place in the LRU list; nil once evicted
	destroyed bool
}

// acquireLocked takes a reference on a cached session and marks it most
// recently used.
func (rt *Runtime) acquireLocked(s *session) {
	if s.destroyed {
		panic("models: acquiring a destroyed session (" + s.key.source + ")")
	}
	s.refs++
	rt.lru.MoveToFront(s.elem)
}

// release drops one reference on s, destroying it when it has been
// evicted and this was its last user. Releasing a session more often than
// it was acquired is a bug in the caller and panics: a silent underflow
// would destroy a session another job is running.
func (rt *Runtime) release(s *session) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if s.refs <= 0 {
		panic(fmt.Sprintf("models: session for %s (%dx%d, batch %d) released more often than acquired", s.key.source, s.key.width, s.key.height, s.key.batch))
	}
	s.refs--
	if s.refs > 0 || s.destroyed {
		return nil
	}
	if s.elem == nil {
		return rt.destroyLocked(s)
	}
	// Idle now: if the cache went over capacity while every session was
	// held, make room.
	return rt.evictLocked()
}

// insertLocked caches a new session with one reference and evicts what no
// longer fits.
func (rt *Runtime) insertLocked(s *session) error {
	s.refs = 1
	s.elem = rt.lru.PushFront(s)
	rt.sessions[s.key] = s
	rt.all[s] = struct{}{}
	rt.live++
	rt.created++
	return rt.evictLocked()
}

// evictLocked removes sessions from the cache until it holds no more than
// the capacity: the least recently used idle ones first, destroyed at
// once; when every cached session is in use, the least recently used of
// them leaves the cache and lives on until its last release.
func (rt *Runtime) evictLocked() error {
	var errs []error
	for len(rt.sessions) > rt.capacity {
		var victim *session
		for e := rt.lru.Back(); e != nil; e = e.Prev() {
			if s := e.Value.(*session); s.refs == 0 {
				victim = s
				break
			}
		}
		if victim == nil {
			victim = rt.lru.Back().Value.(*session)
		}
		rt.lru.Remove(victim.elem)
		victim.elem = nil
		delete(rt.sessions, victim.key)
		rt.log.Debug("session evicted", "model", victim.key.source, "width", victim.key.width,
			"height", victim.key.height, "batch", victim.key.batch, "in_use", victim.refs)
		if victim.refs == 0 {
			if err := rt.destroyLocked(victim); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// destroyLocked destroys s once.
func (rt *Runtime) destroyLocked(s *session) error {
	if s.destroyed {
		return nil
	}
	s.destroyed = true
	delete(rt.all, s)
	rt.live--
	rt.destroyed++
	if err := s.dyn.Destroy(); err != nil {
		return ortError("models: destroying a session", err)
	}
	return nil
}

// sessionSpec says how to create a session.
type sessionSpec struct {
	key     sessionKey
	path    string // model file, or "" when data is set
	data    []byte // model bytes, for generated graphs
	inputs  []string
	outputs []string
	// extendedOnly limits graph optimization to ONNX Runtime's
	// "extended" level: no NCHWc layout transform, which slows down thin
	// 1×1 convolutions over three planes (the chroma keyer).
	extendedOnly bool
	// rewrite, when set, turns the model's bytes (data, or the file at
	// path) into the graph the session runs; it is called only when the
	// session is created, not when it is found in the cache.
	rewrite func([]byte) ([]byte, error)
}

// session returns the cached session for spec with a reference taken,
// creating it when needed; the caller gives the reference back with
// release. With CUDA asked for and unavailable, it fails, or with
// AllowCPUFallback logs the reason and returns a CPU session. created
// reports whether the session was made by this call.
func (rt *Runtime) session(spec sessionSpec) (s *session, created bool, err error) {
	rt.runMu.RLock()
	defer rt.runMu.RUnlock()
	if rt.closed {
		return nil, false, errors.New("models: the runtime is closed")
	}
	if spec.key.device == CUDA {
		if cerr := rt.CheckCUDA(); cerr != nil {
			if !rt.opts.AllowCPUFallback {
				return nil, false, cerr
			}
			rt.log.Warn("CUDA requested but unavailable; running on the CPU", "reason", cerr.Error(), "model", spec.key.source)
			spec.key.device = CPU
		}
	}
	if s := rt.cached(spec.key); s != nil {
		return s, false, nil
	}

	s, err = rt.newSession(spec)
	if err != nil && spec.key.device == CUDA && rt.opts.AllowCPUFallback {
		rt.log.Warn("creating a CUDA session failed; running on the CPU", "reason", err.Error(), "model", spec.key.source)
		spec.key.device = CPU
		if cached := rt.cached(spec.key); cached != nil {
			return cached, false, nil
		}
		s, err = rt.newSession(spec)
	}
	if err != nil {
		return nil, false, err
	}
	s.key = spec.key
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if cached := rt.sessions[spec.key]; cached != nil {
		// Another goroutine made the same session meanwhile: keep one.
		s.dyn.Destroy()
		rt.acquireLocked(cached)
		return cached, false, nil
	}
	if err := rt.insertLocked(s); err != nil {
		// Destroying an evicted session failed; the new one is fine.
		rt.log.Warn("evicting a session failed", "err", err.Error())
	}
	return s, true, nil
}

// cached returns the cached session for key with a reference taken, or
// nil.
func (rt *Runtime) cached(key sessionKey) *session {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s := rt.sessions[key]
	if s != nil {
		rt.acquireLocked(s)
	}
	return s
}

func (rt *Runtime) newSession(spec sessionSpec) (*session, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, ortError("models: creating session options", err)
	}
	defer opts.Destroy()
	if rt.opts.Threads > 0 {
		if err := opts.SetIntraOpNumThreads(rt.opts.Threads); err != nil {
			return nil, ortError("models: setting the thread count", err)
		}
		if err := opts.SetInterOpNumThreads(1); err != nil {
			return nil, ortError("models: setting the thread count", err)
		}
	}
	if !rt.opts.AllowSpinning {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, ortError("models: configuring the thread pool", err)
		}
		if err := opts.AddSessionConfigEntry("session.inter_op.allow_spinning", "0"); err != nil {
			return nil, ortError("models: configuring the thread pool", err)
		}
	}
	if spec.extendedOnly {
		if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableExtended); err != nil {
			return nil, ortError("models: setting the optimization level", err)
		}
	}
	if spec.key.device == CUDA {
		if err := appendCUDA(opts); err != nil {
			return nil, err
		}
	}
	var dyn *ort.DynamicAdvancedSession
	start := time.Now()
	if spec.rewrite != nil {
		data := spec.data
		if data == nil {
			if data, err = os.ReadFile(spec.path); err != nil {
				return nil, fmt.Errorf("models: reading %s: %w", spec.path, err)
			}
		}
		if spec.data, err = spec.rewrite(data); err != nil {
			return nil, fmt.Errorf("models: rewriting %s: %w", spec.key.source, err)
		}
	}
	if spec.data != nil {
		dyn, err = ort.NewDynamicAdvancedSessionWithONNXData(spec.data, spec.inputs, spec.outputs, opts)
	} else {
		dyn, err = ort.NewDynamicAdvancedSession(spec.path, spec.inputs, spec.outputs, opts)
	}
	if err != nil {
		what := "models: creating a session for " + spec.key.source
		if spec.key.device == CUDA {
			return nil, fmt.Errorf("%w: %s", ErrCUDAUnavailable, ortError(what+" on CUDA", err))
		}
		return nil, ortError(what, err)
	}
	rt.log.Debug("session created", "model", spec.key.source, "device", spec.key.device,
		"width", spec.key.width, "height", spec.key.height, "batch", spec.key.batch, "took", time.Since(start))
	return &session{dyn: dyn, inputs: spec.inputs, outputs: spec.outputs, device: spec.key.device}, nil
}

// ModelIO describes one input or output of a model file as ONNX Runtime
// sees it.
type ModelIO struct {
	Name string
	// Type is the element type ("float", "float16", "int64"…), or the
	// value kind for non-tensors ("sequence", "map"…).
	Type string
	// Shape has -1 for dimensions that are dynamic.
	Shape []int64
}

// String returns `name float [1,3,-1,-1]`.
func (io ModelIO) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s [", io.Name, io.Type)
	for i, d := range io.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// Inspect returns the inputs and outputs of the model file at path, as
// ONNX Runtime loads it.
func (rt *Runtime) Inspect(path string) (inputs, outputs []ModelIO, err error) {
	rt.runMu.RLock()
	defer rt.runMu.RUnlock()
	if rt.closed {
		return nil, nil, errors.New("models: the runtime is closed")
	}
	in, out, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, ortError("models: ONNX Runtime cannot load "+path, err)
	}
	return convertIO(in), convertIO(out), nil
}

func convertIO(infos []ort.InputOutputInfo) []ModelIO {
	out := make([]ModelIO, len(infos))
	for i, info := range infos {
		io := ModelIO{Name: info.Name}
		if info.OrtValueType == ort.ONNXTypeTensor {
			io.Type = elemTypeName(info.DataType)
			io.Shape = append([]int64(nil), info.Dimensions...)
		} else {
			io.Type = strings.ToLower(strings.TrimPrefix(info.OrtValueType.String(), "ONNX_TYPE_"))
		}
		out[i] = io
	}
	return out
}

func elemTypeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeDouble:
		return "double"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeBool:
		return "bool"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
}
