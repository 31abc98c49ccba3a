// Package service holds the daemon's use cases between its faces (the HTTP
// api, the command line) and its store: receiving uploads, creating,
// starting and canceling jobs (model resolution, pricing, fetching and
// probing, media limits), fetching background images for the runner, and
// the retention sweep that reclaims the disk. A face decodes a request,
// makes one call here and encodes the answer.
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"vidmatte"
	"vidmatte/artifacts"
	"vidmatte/fetch"
	"vidmatte/internal/fsx"
)

// Store is what the service needs of the store. *store.DB satisfies it.
type Store interface {
	vidmatte.UploadService
	vidmatte.JobService
	// DeleteUpload drops the record of an upload no job refers to.
	DeleteUpload(ctx context.Context, keyID, id string) error
	RetentionStore
}

// Prober probes a local media file. A file with no decodable video stream
// is an error of code unsupported_media_type.
type Prober interface {
	Probe(ctx context.Context, path string) (*vidmatte.MediaInfo, error)
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, path string) (*vidmatte.MediaInfo, error)

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, path string) (*vidmatte.MediaInfo, error) {
	return f(ctx, path)
}

// Runner is the job runner as the service sees it: told when a job was
// queued, and asked to stop a job that was canceled. Either may be a no-op.
type Runner interface {
	Wake()
	Cancel(jobID string) bool
}

// Config is what a Service is built from.
type Config struct {
	Store   Store
	Catalog *Catalog
	Prober  Prober
	Fetcher *fetch.Client
	// Files keeps uploads and fetched videos once they are accepted (nil:
	// local files where they were written).
	Files  *artifacts.Files
	Runner Runner // optional; SetRunner may set it later

	// DataDir holds uploads/ (uploaded and fetched videos), outputs/ and
	// backgrounds/ (fetched background images).
	DataDir string
	// MaxFetchBytes bounds one remote video or image.
	MaxFetchBytes int64
	// Media bounds the videos accepted, uploaded or fetched.
	Media vidmatte.MediaLimits
	// Retention is how long files are kept (zero fields: the defaults).
	Retention Retention

	Logger *slog.Logger
	Now    func() time.Time
}

// Service is the daemon's use cases. Its methods are safe for concurrent
// use.
type Service struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	runner Runner

	uploadDir, outputDir, backgroundDir string

	bgMu sync.Mutex // one fetch per background image at a time
}

// New checks cfg, fills its defaults, makes the data folders and returns
// the service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("service: no store")
	case cfg.Catalog == nil:
		return nil, errors.New("service: no model catalog")
	case cfg.Prober == nil:
		return nil, errors.New("service: no prober")
	case cfg.Fetcher == nil:
		return nil, errors.New("service: no fetcher")
	case cfg.DataDir == "":
		return nil, errors.New("service: no data dir")
	}
	if cfg.MaxFetchBytes <= 0 {
		cfg.MaxFetchBytes = 500 << 20
	}
	if cfg.Files == nil {
		cfg.Files, _ = artifacts.NewFiles(nil, "")
	}
	cfg.Retention = cfg.Retention.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		cfg:           cfg,
		store:         cfg.Store,
		log:           cfg.Logger,
		runner:        cfg.Runner,
		uploadDir:     filepath.Join(cfg.DataDir, "uploads"),
		outputDir:     filepath.Join(cfg.DataDir, "outputs"),
		backgroundDir: filepath.Join(cfg.DataDir, "backgrounds"),
	}
	for _, d := range []string{s.uploadDir, s.outputDir, s.backgroundDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	return s, nil
}

// SetRunner sets the runner after construction (the runner is built with
// the service's FetchBackground).
func (s *Service) SetRunner(r Runner) { s.runner = r }

// Catalog is the models offered and their prices.
func (s *Service) Catalog() *Catalog { return s.cfg.Catalog }

// NewUploadPath returns where a new upload named filename is streamed: a
// fresh name in the uploads folder that keeps a safe extension.
func (s *Service) NewUploadPath(filename string) string {
	return filepath.Join(s.uploadDir, vidmatte.NewID("up_")+extensionOf(filename))
}

// ReceiveUpload probes a file streamed to path, checks it against the
// media limits and records it as an upload of the key. On any error the
// file is removed: a refused upload leaves nothing behind.
func (s *Service) ReceiveUpload(ctx context.Context, keyID, path, filename string, size int64) (*vidmatte.Upload, error) {
	up, err := s.record(ctx, keyID, path, "file", SanitizeFilename(filename), size, false)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return up, nil
}

// record probes path and records it as an upload.
func (s *Service) record(ctx context.Context, keyID, p, field, filename string, size int64, fetched bool) (*vidmatte.Upload, error) {
	info, err := s.probe(ctx, p, field)
	if err != nil {
		return nil, err
	}
	ref, err := s.cfg.Files.Keep(ctx, "uploads/"+filepath.Base(p), p)
	if err != nil {
		return nil, err
	}
	up := &vidmatte.Upload{
		KeyID:       keyID,
		Filename:    filename,
		Path:        ref,
		Size:        size,
		DurationSec: info.DurationSec,
		Width:       info.Width,
		Height:      info.Height,
		FPS:         info.FPS,
		HasAudio:    info.HasAudio,
		Fetched:     fetched,
	}
	if err := s.store.CreateUpload(ctx, up); err != nil {
		if artifacts.IsObject(ref) {
			s.cfg.Files.Delete(context.WithoutCancel(ctx), ref)
		}
		return nil, err
	}
	return up, nil
}

// probe probes a received file: anything but a decodable video is a 415;
// a video past the media limits (or of unknown duration) is a 422.
func (s *Service) probe(ctx context.Context, p, field string) (*vidmatte.MediaInfo, error) {
	info, err := s.cfg.Prober.Probe(ctx, p)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		code := vidmatte.ErrorCode(err)
		s.log.InfoContext(ctx, "probe refused the file", slog.String("field", field), slog.Any("error", err))
		if code == vidmatte.CodeInternal || code == vidmatte.CodeUnsupportedMedia || code == vidmatte.CodeUnprocessable || code == vidmatte.CodeInvalid {
			return nil, &vidmatte.Error{Code: vidmatte.CodeUnsupportedMedia, Field: field, Err: err,
				Message: field + ": no decodable video stream (" + vidmatte.ErrorMessage(err) + ")"}
		}
		return nil, err
	}
	if info.Width <= 0 || info.Height <= 0 {
		return nil, &vidmatte.Error{Code: vidmatte.CodeUnsupportedMedia, Field: field, Message: field + ": no decodable video stream"}
	}
	if err := s.cfg.Media.Check(info, field); err != nil {
		return nil, err
	}
	return info, nil
}

// JobRequest is a client's request for a job, decoded and checked for
// form by the face. Nil fields take their defaults.
type JobRequest struct {
	KeyID        string
	VideoURL     string
	Model        *string
	OutputFormat *vidmatte.OutputFormat
	Background   *vidmatte.Background
	Composition  *vidmatte.Composition
	WebhookURL   string
	Metadata     map[string]string
	AutoStart    bool
	RequestID    string
	// OwnHosts are the host names under which clients reach this daemon:
	// a video_url on one of them must name an upload, never be fetched.
	OwnHosts []string
}

// CreateJob resolves the model, checks the format and background, finds the
// upload video_url names (or fetches and probes it into a new upload),
// prices the job and stores it, queued with its credits reserved when
// AutoStart, else a pending draft. When the creation is refused (a short
// balance, a quota, a bad request found late) a video it fetched is
// deleted with its record: nothing is left behind.
func (s *Service) CreateJob(ctx context.Context, req JobRequest) (*vidmatte.Job, error) {
	name := ""
	if req.Model != nil {
		name = *req.Model
	}
	model, err := s.cfg.Catalog.Resolve(name)
	if err != nil {
		return nil, err
	}
	j := &vidmatte.Job{
		KeyID:        req.KeyID,
		VideoURL:     req.VideoURL,
		Model:        model,
		OutputFormat: vidmatte.FormatWebM,
		Background:   vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		Composition:  req.Composition,
		WebhookURL:   req.WebhookURL,
		Metadata:     req.Metadata,
		RequestID:    req.RequestID,
	}
	if req.OutputFormat != nil {
		j.OutputFormat = *req.OutputFormat
	}
	if req.Background != nil {
		j.Background = *req.Background
	}
	if err := vidmatte.CheckFormatBackground(j.OutputFormat, j.Background); err != nil {
		return nil, err
	}
	up, fetched, err := s.resolveVideo(ctx, req)
	if err != nil {
		return nil, err
	}
	j.UploadID = up.ID
	j.InputPath = up.Path
	j.DurationSec = up.DurationSec
	if up.FPS > 0 {
		j.FramesTotal = int64(up.DurationSec*up.FPS + 0.5)
	}
	j.Credits = s.cfg.Catalog.Credits(model, up.DurationSec)
	if err := s.store.CreateJob(ctx, j, req.AutoStart, req.RequestID); err != nil {
		if fetched {
			s.discardFetched(up)
		}
		return nil, err
	}
	if req.AutoStart {
		s.wake()
	}
	return j, nil
}

// discardFetched deletes a fetched upload whose job was refused, file and
// record. It runs on its own context: the request's may be done.
func (s *Service) discardFetched(up *vidmatte.Upload) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.DeleteUpload(ctx, up.KeyID, up.ID); err != nil {
		s.log.Warn("deleting the record of a refused fetch", slog.String("video_id", up.ID), slog.Any("error", err))
		return // the retention sweep will expire it
	}
	if _, err := s.cfg.Files.Delete(ctx, up.Path); err != nil {
		s.log.Warn("deleting a refused fetch", slog.String("path", up.Path), slog.Any("error", err))
	}
}

// resolveVideo finds the upload a video_url names, or fetches a remote
// video into a new upload of the key (fetched true).
func (s *Service) resolveVideo(ctx context.Context, req JobRequest) (*vidmatte.Upload, bool, error) {
	u, err := url.Parse(req.VideoURL)
	if err != nil {
		return nil, false, vidmatte.FieldErrorf("video_url", "not a valid URL")
	}
	if dir, id := path.Split(u.Path); dir == "/v1/uploads/" && vidmatte.ValidID(id) {
		up, err := s.store.FindUpload(ctx, req.KeyID, id)
		if err == nil {
			return up, false, nil
		}
		if vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
			return nil, false, err
		}
		for _, h := range req.OwnHosts {
			if h != "" && strings.EqualFold(h, u.Host) {
				return nil, false, vidmatte.FieldErrorf("video_url", "no upload %s", id)
			}
		}
	}
	name := vidmatte.NewID("fetch_") + extensionOf(u.Path)
	p, size, err := s.cfg.Fetcher.Fetch(ctx, req.VideoURL, "video_url", s.uploadDir, name, s.cfg.MaxFetchBytes)
	if err != nil {
		return nil, false, err
	}
	up, err := s.record(ctx, req.KeyID, p, "video_url", SanitizeFilename(path.Base(u.Path)), size, true)
	if err != nil {
		os.Remove(p)
		return nil, false, err
	}
	return up, true, nil
}

// FindUpload returns a live upload of the key.
func (s *Service) FindUpload(ctx context.Context, keyID, id string) (*vidmatte.Upload, error) {
	return s.store.FindUpload(ctx, keyID, id)
}

// StartRequest overrides fields of a draft when it is started.
type StartRequest struct {
	Model        *string
	OutputFormat *vidmatte.OutputFormat
	Background   *vidmatte.Background
	Composition  *vidmatte.Composition
	RequestID    string
}

// StartJob queues a pending draft of the key with the overrides, repricing
// it for its model, and reserves its credits.
func (s *Service) StartJob(ctx context.Context, keyID, id string, req StartRequest) (*vidmatte.Job, error) {
	cur, err := s.store.FindJob(ctx, keyID, id)
	if err != nil {
		return nil, err
	}
	if cur.Status != vidmatte.StatusPending {
		return nil, vidmatte.Errorf(vidmatte.CodeConflict, "job is %s; only a pending draft can be started", cur.Status)
	}
	var patch vidmatte.JobPatch
	model, format, bg := cur.Model, cur.OutputFormat, cur.Background
	if req.Model != nil {
		if model, err = s.cfg.Catalog.Resolve(*req.Model); err != nil {
			return nil, err
		}
		patch.Model = &model
	}
	if req.OutputFormat != nil {
		format = *req.OutputFormat
		patch.OutputFormat = &format
	}
	if req.Background != nil {
		bg = *req.Background
		patch.Background = &bg
	}
	patch.Composition = req.Composition
	if err := vidmatte.CheckFormatBackground(format, bg); err != nil {
		return nil, err
	}
	credits := s.cfg.Catalog.Credits(model, cur.DurationSec)
	patch.Credits = &credits
	j, err := s.store.StartJob(ctx, keyID, cur.ID, patch, req.RequestID)
	if err != nil {
		return nil, err
	}
	s.wake()
	return j, nil
}

// CancelJob cancels a job of the key, refunding its reservation, and stops
// it if it runs in this process.
func (s *Service) CancelJob(ctx context.Context, keyID, id, requestID string) (*vidmatte.Job, error) {
	j, err := s.store.CancelJob(ctx, keyID, id, "canceled by the client", requestID)
	if err != nil {
		return nil, err
	}
	if s.runner != nil {
		s.runner.Cancel(j.ID)
	}
	return j, nil
}

func (s *Service) wake() {
	if s.runner != nil {
		s.runner.Wake()
	}
}

// FetchBackground fetches a background image URL into the backgrounds
// folder and returns the local file. Files are named by the URL's hash and
// reused by later jobs with the same URL (a reuse renews the file's
// lifetime). The runner calls it for jobs with image backgrounds.
func (s *Service) FetchBackground(ctx context.Context, rawURL string) (string, error) {
	if err := fetch.CheckURL(rawURL, "background.image_url"); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(rawURL))
	u, _ := url.Parse(rawURL)
	name := hex.EncodeToString(sum[:16]) + extensionOf(u.Path)
	final := filepath.Join(s.backgroundDir, name)
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if st, err := os.Stat(final); err == nil && st.Size() > 0 {
		now := s.cfg.Now()
		_ = os.Chtimes(final, now, now)
		return final, nil
	}
	tmp := "." + vidmatte.NewID("bg_") + extensionOf(u.Path)
	p, _, err := s.cfg.Fetcher.Fetch(ctx, rawURL, "background.image_url", s.backgroundDir, tmp, s.cfg.MaxFetchBytes)
	if err != nil {
		return "", err
	}
	if err := fsx.Rename(p, final); err != nil {
		os.Remove(p)
		return "", err
	}
	return final, nil
}

// SanitizeFilename keeps the last path element of a client's file name,
// without control or reserved characters, at most 200 bytes.
func SanitizeFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || r == ':' || r == '"' || r == '<' || r == '>' || r == '|' || r == '*' || r == '?' {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > 200 {
			break
		}
		b.WriteRune(r)
	}
	name = strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	if name == "" {
		name = "upload"
	}
	return name
}

// extensionOf returns a safe lower-case extension of a name (".mp4"), or "".
func extensionOf(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if len(ext) < 2 || len(ext) > 9 {
		return ""
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return ext
}
