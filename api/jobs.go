package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"vidmatte/service"

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

// RenderJob is the job object as JSON, with output URLs on the daemon's
// public URL: the body of a webhook delivery.
func (s *Server) RenderJob(j *vidmatte.Job) ([]byte, error) {
	return json.Marshal(s.renderJob(j, s.cfg.PublicURL))
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
	if j.Status == vidmatte.StatusCompleted && j.OutputPath != "" && j.OutputExpiredAt == nil {
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
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "Content-Type must be application/json, not %q", vidmatte.SafeText(mt))
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	if err != nil {
		return nil, bodyReadError(err, s.cfg.Limits.MaxBodyBytes)
	}
	return b, nil
}

func (s *Server) handleCreateJob(w http.ResponseWriter, r *http.Request, _ params) {
	ctx := r.Context()
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
	j, err := s.svc.CreateJob(ctx, service.JobRequest{
		KeyID:        keyFrom(ctx).ID,
		VideoURL:     req.VideoURL,
		Model:        req.Model,
		OutputFormat: req.Format,
		Background:   req.Background,
		Composition:  req.Composition,
		WebhookURL:   req.WebhookURL,
		Metadata:     req.Metadata,
		AutoStart:    req.AutoStart,
		RequestID:    requestIDFrom(ctx),
		OwnHosts:     s.ownHosts(r),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	setJobID(ctx, j.ID)
	loggerFrom(ctx).Info("job created", slog.String("status", string(j.Status)), slog.String("model", j.Model),
		slog.Float64("credits", j.Credits), slog.Float64("duration_seconds", j.DurationSec))
	out := s.renderJob(j, s.baseURL(r))
	ok := true
	out.Success = &ok
	out.Message = createdMessage(j)
	writeJSON(w, http.StatusCreated, out)
}

// createdMessage is the message of a created job's answer.
func createdMessage(j *vidmatte.Job) string {
	if j.Status == vidmatte.StatusPending {
		return "Draft job created; start it with POST /v1/jobs/" + j.ID + "/start"
	}
	return "Job created and queued"
}

// ownHosts are the hosts under which the client may have named this
// daemon: the public URL's and the request's own.
func (s *Server) ownHosts(r *http.Request) []string {
	var hosts []string
	if s.cfg.PublicURL != "" {
		if pu, err := url.Parse(s.cfg.PublicURL); err == nil {
			hosts = append(hosts, pu.Host)
		}
	}
	return append(hosts, r.Host)
}

func (s *Server) handleStartJob(w http.ResponseWriter, r *http.Request, p params) {
	ctx := r.Context()
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
	j, err := s.svc.StartJob(ctx, keyFrom(ctx).ID, p["job_id"], service.StartRequest{
		Model:        req.Model,
		OutputFormat: req.Format,
		Background:   req.Background,
		Composition:  req.Composition,
		RequestID:    requestIDFrom(ctx),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	loggerFrom(ctx).Info("job started", slog.String("model", j.Model), slog.Float64("credits", j.Credits))
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
	j, err := s.svc.CancelJob(ctx, keyFrom(ctx).ID, p["job_id"], requestIDFrom(ctx))
	if err != nil {
		writeError(w, r, err)
		return
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
