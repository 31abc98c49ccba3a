package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"vidmatte"
)

// jobJSON is the job object of the contract.
type jobJSON struct {
	Success         *bool                  `json:"success,omitempty"`
	Message         string                 `json:"message,omitempty"`
	ID              string                 `json:"id"`
	JobID           string                 `json:"job_id"`
	Status          vidmatte.Status        `json:"status"`
	Progress        int                    `json:"progress"`
	OutputURL       *string                `json:"output_url"`
	Error           *vidmatte.JobError     `json:"error"`
	Model           string                 `json:"model"`
	OutputFormat    vidmatte.OutputFormat  `json:"output_format"`
	Background      vidmatte.Background    `json:"background"`
	CreatedAt       string                 `json:"created_at"`
	StartedAt       *string                `json:"started_at"`
	CompletedAt     *string                `json:"completed_at"`
	DurationSeconds float64                `json:"duration_seconds"`
	FramesTotal     int64                  `json:"frames_total"`
	FramesDone      int64                  `json:"frames_done"`
	Credits         float64                `json:"credits"`
	BillingStatus   vidmatte.BillingStatus `json:"billing_status"`
	Metadata        map[string]string      `json:"metadata"`
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func timePtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := timeText(*t)
	return &s
}

// renderJob makes the job object; base is the daemon's URL for output_url.
func (s *Server) renderJob(j *vidmatte.Job, base string) *jobJSON {
	out := &jobJSON{
		ID:              j.ID,
		JobID:           j.ID,
		Status:          j.Status,
		Progress:        j.Progress,
		Error:           j.Error,
		Model:           j.Model,
		OutputFormat:    j.OutputFormat,
		Background:      j.Background,
		CreatedAt:       timeText(j.CreatedAt),
		StartedAt:       timePtr(j.StartedAt),
		CompletedAt:     timePtr(j.CompletedAt),
		DurationSeconds: j.DurationSec,
		FramesTotal:     j.FramesTotal,
		FramesDone:      j.FramesDone,
		Credits:         j.Credits,
		BillingStatus:   j.BillingStatus,
		Metadata:        j.Metadata,
	}
	if out.Background.Type == "" {
		out.Background.Type = vidmatte.BackgroundTransparent
	}
	if out.BillingStatus == "" {
		out.BillingStatus = vidmatte.BillingNone
	}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	if j.Status == vidmatte.StatusCompleted && j.OutputPath != "" {
		u := base + s.signer.url(j.ID, j.OutputFormat, s.cfg.OutputURLTTL)
		out.OutputURL = &u
	}
	return out
}

// readBody reads a JSON body within the body limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "Content-Type must be application/json, not %q", sanitizeForMessage(mt))
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	if err != nil {
		return nil, bodyReadError(err, s.cfg.Limits.MaxBodyBytes)
	}
	return b, nil
}

// checkFormatBackground refuses a transparent background on a format that
// has no alpha channel to show it.
func checkFormatBackground(f vidmatte.OutputFormat, b vidmatte.Background) error {
	if f == vidmatte.FormatMP4 && b.Transparent() {
		return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Field: "background",
			Message: "mp4 has no alpha channel: choose a color, image or blur background, or an output format with alpha (webm, mov, webp, gif, png_sequence)"}
	}
	return nil
}

func (s *Server) handleCreateJob(w http.ResponseWriter, r *http.Request, _ params) {
	ctx := r.Context()
	key := keyFrom(ctx)
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := parseJobRequest(body, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	name := ""
	if req.Model != nil {
		name = *req.Model
	}
	model, err := s.cfg.Catalog.Resolve(name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	j := &vidmatte.Job{
		KeyID:        key.ID,
		VideoURL:     req.VideoURL,
		Model:        model,
		OutputFormat: vidmatte.FormatWebM,
		Background:   vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		Composition:  req.Composition,
		WebhookURL:   req.WebhookURL,
		Metadata:     req.Metadata,
		RequestID:    requestIDFrom(ctx),
	}
	if req.Format != nil {
		j.OutputFormat = *req.Format
	}
	if req.Background != nil {
		j.Background = *req.Background
	}
	if err := checkFormatBackground(j.OutputFormat, j.Background); err != nil {
		writeError(w, r, err)
		return
	}
	up, err := s.resolveVideo(ctx, key, req.VideoURL)
	if err != nil {
		writeError(w, r, err)
		return
	}
	j.UploadID = up.ID
	j.InputPath = up.Path
	j.DurationSec = up.DurationSec
	if up.FPS > 0 {
		j.FramesTotal = int64(up.DurationSec*up.FPS + 0.5)
	}
	j.Credits = s.cfg.Catalog.Credits(model, up.DurationSec)
	if err := s.store.CreateJob(ctx, j, req.AutoStart, requestIDFrom(ctx)); err != nil {
		writeError(w, r, err)
		return
	}
	setJobID(ctx, j.ID)
	loggerFrom(ctx).Info("job created", slog.String("status", string(j.Status)), slog.String("model", j.Model),
		slog.Float64("credits", j.Credits), slog.Float64("duration_seconds", j.DurationSec))
	msg := "Job created and queued"
	if req.AutoStart {
		s.wake()
	} else {
		msg = "Draft job created; start it with POST /v1/jobs/" + j.ID + "/start"
	}
	out := s.renderJob(j, s.baseURL(r))
	ok := true
	out.Success = &ok
	out.Message = msg
	writeJSON(w, http.StatusCreated, out)
}

// resolveVideo finds the upload a video_url names, or fetches a remote
// video into a new upload of the key.
func (s *Server) resolveVideo(ctx context.Context, key *vidmatte.Key, raw string) (*vidmatte.Upload, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, vidmatte.FieldErrorf("video_url", "not a valid URL")
	}
	if dir, id := path.Split(u.Path); dir == "/v1/uploads/" && validID(id) {
		up, err := s.store.FindUpload(ctx, key.ID, id)
		if err == nil {
			return up, nil
		}
		if vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
			return nil, err
		}
		if s.ownHost(ctx, u.Host) {
			return nil, vidmatte.FieldErrorf("video_url", "no upload %s", id)
		}
	}
	name := newID("fetch_") + extensionOf(u.Path)
	p, size, err := s.fetcher.Fetch(ctx, raw, "video_url", s.uploadDir, name, s.cfg.Limits.MaxFetchBytes)
	if err != nil {
		return nil, err
	}
	info, err := s.probe(ctx, p, "video_url")
	if err != nil {
		os.Remove(p)
		return nil, err
	}
	up := &vidmatte.Upload{
		KeyID:       key.ID,
		Filename:    sanitizeFilename(path.Base(u.Path)),
		Path:        p,
		Size:        size,
		DurationSec: info.DurationSec,
		Width:       info.Width,
		Height:      info.Height,
		FPS:         info.FPS,
		HasAudio:    info.HasAudio,
	}
	if err := s.store.CreateUpload(ctx, up); err != nil {
		os.Remove(p)
		return nil, err
	}
	return up, nil
}

// ownHost reports whether host is how clients reach this daemon.
func (s *Server) ownHost(ctx context.Context, host string) bool {
	if s.cfg.PublicURL != "" {
		if pu, err := url.Parse(s.cfg.PublicURL); err == nil && strings.EqualFold(pu.Host, host) {
			return true
		}
	}
	if ri := infoFrom(ctx); ri != nil && ri.host != "" {
		return strings.EqualFold(ri.host, host)
	}
	return false
}

// probe probes a received file; anything but a decodable video is a 415.
func (s *Server) probe(ctx context.Context, p, field string) (*MediaInfo, error) {
	info, err := s.cfg.Prober.Probe(ctx, p)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		code := vidmatte.ErrorCode(err)
		loggerFrom(ctx).Info("probe refused the file", slog.String("field", field), slog.Any("error", err))
		if code == vidmatte.CodeInternal || code == vidmatte.CodeUnsupportedMedia || code == vidmatte.CodeUnprocessable || code == vidmatte.CodeInvalid {
			return nil, &vidmatte.Error{Code: vidmatte.CodeUnsupportedMedia, Field: field, Err: err,
				Message: field + ": no decodable video stream (" + vidmatte.ErrorMessage(err) + ")"}
		}
		return nil, err
	}
	if info.Width <= 0 || info.Height <= 0 {
		return nil, &vidmatte.Error{Code: vidmatte.CodeUnsupportedMedia, Field: field, Message: field + ": no decodable video stream"}
	}
	return info, nil
}

func (s *Server) wake() {
	if s.cfg.Runner != nil {
		s.cfg.Runner.Wake()
	}
}

func (s *Server) handleStartJob(w http.ResponseWriter, r *http.Request, p params) {
	ctx := r.Context()
	key := keyFrom(ctx)
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := parseJobRequest(body, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	cur, err := s.store.FindJob(ctx, key.ID, p["job_id"])
	if err != nil {
		writeError(w, r, err)
		return
	}
	if cur.Status != vidmatte.StatusPending {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeConflict, "job is %s; only a pending draft can be started", cur.Status))
		return
	}
	var patch vidmatte.JobPatch
	model, format, bg := cur.Model, cur.OutputFormat, cur.Background
	if req.Model != nil {
		if model, err = s.cfg.Catalog.Resolve(*req.Model); err != nil {
			writeError(w, r, err)
			return
		}
		patch.Model = &model
	}
	if req.Format != nil {
		format = *req.Format
		patch.OutputFormat = &format
	}
	if req.Background != nil {
		bg = *req.Background
		patch.Background = &bg
	}
	if req.Composition != nil {
		patch.Composition = req.Composition
	}
	if err := checkFormatBackground(format, bg); err != nil {
		writeError(w, r, err)
		return
	}
	credits := s.cfg.Catalog.Credits(model, cur.DurationSec)
	patch.Credits = &credits
	j, err := s.store.StartJob(ctx, key.ID, cur.ID, patch, requestIDFrom(ctx))
	if err != nil {
		writeError(w, r, err)
		return
	}
	loggerFrom(ctx).Info("job started", slog.String("model", j.Model), slog.Float64("credits", j.Credits))
	s.wake()
	writeJSON(w, http.StatusOK, s.renderJob(j, s.baseURL(r)))
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request, p params) {
	j, err := s.store.FindJob(r.Context(), keyFrom(r.Context()).ID, p["job_id"])
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderJob(j, s.baseURL(r)))
}

// jobList is the answer of GET /v1/jobs.
type jobList struct {
	Jobs   []*jobJSON `json:"jobs"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request, _ params) {
	q, err := parseJobListQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, err)
		return
	}
	jobs, err := s.store.ListJobs(r.Context(), keyFrom(r.Context()).ID, vidmatte.JobFilter{Status: q.Status, Limit: q.Limit, Offset: q.Offset})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := jobList{Jobs: make([]*jobJSON, 0, len(jobs)), Limit: q.Limit, Offset: q.Offset}
	base := s.baseURL(r)
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, s.renderJob(j, base))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request, p params) {
	ctx := r.Context()
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		o, err := parseObject(body, "")
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := o.done(); err != nil {
			writeError(w, r, err)
			return
		}
	}
	j, err := s.store.CancelJob(ctx, keyFrom(ctx).ID, p["job_id"], "canceled by the client", requestIDFrom(ctx))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if s.cfg.Runner != nil {
		s.cfg.Runner.Cancel(j.ID)
	}
	loggerFrom(ctx).Info("job canceled")
	writeJSON(w, http.StatusOK, s.renderJob(j, s.baseURL(r)))
}

// downloadJSON is the answer of the legacy GET /api/download/{job_id}.
type downloadJSON struct {
	Success   bool            `json:"success"`
	JobID     string          `json:"job_id"`
	Status    vidmatte.Status `json:"status"`
	OutputURL string          `json:"output_url"`
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, p params) {
	j, err := s.store.FindJob(r.Context(), keyFrom(r.Context()).ID, p["job_id"])
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := s.renderJob(j, s.baseURL(r))
	if out.OutputURL == nil {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeInvalid, "Job not completed"))
		return
	}
	writeJSON(w, http.StatusOK, downloadJSON{Success: true, JobID: j.ID, Status: j.Status, OutputURL: *out.OutputURL})
}
