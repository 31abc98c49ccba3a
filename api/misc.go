package api

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"time"
	"vidmatte/service"

	"vidmatte"
)

// pricingJSON is the answer of GET /api/pricing.
type pricingJSON struct {
	Success                      bool                `json:"success"`
	ModelPricingCreditsPerMinute map[string]float64  `json:"model_pricing_credits_per_minute"`
	DefaultModel                 string              `json:"default_model"`
	Models                       []service.ModelInfo `json:"models"`
}

func (s *Server) handlePricing(w http.ResponseWriter, r *http.Request, _ params) {
	out := pricingJSON{Success: true, ModelPricingCreditsPerMinute: map[string]float64{}, DefaultModel: s.svc.Catalog().Default(), Models: s.svc.Catalog().Models()}
	for _, m := range out.Models {
		out.ModelPricingCreditsPerMinute[m.ID] = m.CreditsPerMinute
	}
	writeJSON(w, http.StatusOK, out)
}

// healthJSON is the answer of GET /health. When not ready it also carries
// the structured error.
type healthJSON struct {
	Status     string            `json:"status"`
	Checks     map[string]string `json:"checks"`
	Backends   map[string]string `json:"backends"`
	QueueDepth int               `json:"queue_depth"`
	Processing int               `json:"processing"`
	Error      *errorDetail      `json:"error,omitempty"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request, _ params) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	out := healthJSON{Status: "ok", Checks: map[string]string{}, Backends: map[string]string{"store": s.store.Backend(), "artifacts": s.files.Name()}}
	var problems []string
	if err := s.store.Ping(ctx); err != nil {
		out.Checks["store"] = "unreachable"
		problems = append(problems, "store unreachable")
		loggerFrom(ctx).Error("health: store", "error", err)
	} else {
		out.Checks["store"] = "ok"
		if counts, err := s.store.CountJobs(ctx); err == nil {
			out.QueueDepth = counts[vidmatte.StatusQueued]
			out.Processing = counts[vidmatte.StatusProcessing]
		}
	}
	if err := s.files.Ping(ctx); err != nil {
		out.Checks["artifacts"] = "unreachable"
		problems = append(problems, "artifact storage unreachable")
		loggerFrom(ctx).Error("health: artifacts", "error", err)
	} else {
		out.Checks["artifacts"] = "ok"
	}
	if s.cfg.ModelsReady != nil {
		if err := s.cfg.ModelsReady(ctx); err != nil {
			out.Checks["models"] = "unavailable"
			problems = append(problems, "models not loadable")
			loggerFrom(ctx).Error("health: models", "error", err)
		} else {
			out.Checks["models"] = "ok"
		}
	}
	if s.draining.Load() {
		out.Checks["daemon"] = "draining"
		problems = append(problems, "draining")
	} else {
		out.Checks["daemon"] = "ok"
	}
	if len(problems) == 0 {
		writeJSON(w, http.StatusOK, out)
		return
	}
	out.Status = "unavailable"
	if s.draining.Load() {
		out.Status = "draining"
	}
	out.Error = &errorDetail{Code: vidmatte.CodeUnavailable, Message: "not ready: " + strings.Join(problems, ", "), RequestID: requestIDFrom(ctx)}
	writeJSON(w, StatusOf(vidmatte.CodeUnavailable), out)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ params) {
	if tok := s.cfg.MetricsToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, r, vidmatte.Errorf(vidmatte.CodeUnauthenticated, "metrics need Authorization: Bearer <metrics token>"))
			return
		}
	}
	s.metrics.handler.ServeHTTP(&errorRewriter{w: w, r: r}, r)
}

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3 document of the contract.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ params) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
}

// handleOutput serves a completed job's output through its signed URL,
// with Range requests, its content type and a download file name.
func (s *Server) handleOutput(w http.ResponseWriter, r *http.Request, p params) {
	file := p["file"]
	if err := s.signer.verify(file, r.URL.Query()); err != nil {
		writeError(w, r, err)
		return
	}
	id, ext, _ := strings.Cut(file, ".")
	if !vidmatte.ValidID(id) {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeNotFound, "output not found"))
		return
	}
	setJobID(r.Context(), id)
	j, err := s.store.FindJob(r.Context(), "", id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if j.OutputExpiredAt != nil {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeNotFound, "output expired at %s", timeText(*j.OutputExpiredAt)))
		return
	}
	if j.Status != vidmatte.StatusCompleted || j.OutputPath == "" || "."+ext != j.OutputFormat.Extension() {
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeNotFound, "output not found"))
		return
	}
	f, err := s.files.Open(r.Context(), j.OutputPath)
	if vidmatte.ErrorCode(err) == vidmatte.CodeNotFound {
		writeError(w, r, vidmatte.Wrap(err, vidmatte.CodeNotFound, "output no longer available"))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", j.OutputFormat.ContentType())
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, file))
	h.Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(&errorRewriter{w: w, r: r}, r, "", f.Info().ModTime, f)
}

// errorRewriter turns the plain-text errors that net/http helpers write
// (a Range that cannot be satisfied, say) into the structured payload,
// keeping their status.
type errorRewriter struct {
	w       http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (e *errorRewriter) Header() http.Header { return e.w.Header() }

func (e *errorRewriter) WriteHeader(code int) {
	if code < 400 {
		e.w.WriteHeader(code)
		return
	}
	e.swallow = true
	h := e.w.Header()
	h.Del("Content-Length")
	h.Del("Content-Range")
	h.Del("Content-Disposition")
	c := vidmatte.CodeInvalid
	msg := http.StatusText(code)
	if code >= 500 {
		c, msg = vidmatte.CodeInternal, "internal error"
	}
	writeJSON(e.w, code, errorBody{Error: errorDetail{Code: c, Message: msg, RequestID: requestIDFrom(e.r.Context())}})
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.w.Write(b)
}
