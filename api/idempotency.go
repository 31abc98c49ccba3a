package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"vidmatte"
)

// IdempotencyTTL is how long a POST's first response is kept for replay.
const IdempotencyTTL = 24 * time.Hour

// DefaultIdempotencyLease is how long a claimed Idempotency-Key answers
// 409 (in progress) before a retry may take it over. It outlasts any
// request a live daemon is still answering: the body read, a fetch within
// its time limit and the probe.
const DefaultIdempotencyLease = 15 * time.Minute

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// idemClaim is a claimed Idempotency-Key whose response is yet to be kept.
type idemClaim struct {
	s   *Server
	rec *vidmatte.IdempotencyRecord
}

// beginIdempotent looks up the request's Idempotency-Key (if any) for the
// request fingerprint hash. It returns a claim to finish once the response
// is known; or replayed true when it has answered already (a replay, or
// the error of a key in flight or reused with another request).
func (s *Server) beginIdempotent(w http.ResponseWriter, r *http.Request, hash string) (*idemClaim, bool) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return nil, false
	}
	if len(k) > maxIdempotencyKey || !printable(k) {
		writeError(w, r, vidmatte.FieldErrorf("Idempotency-Key", "must be 1 to %d printable characters", maxIdempotencyKey))
		return nil, true
	}
	key := keyFrom(r.Context())
	rec := &vidmatte.IdempotencyRecord{
		KeyID:     key.ID,
		Key:       k,
		Method:    r.Method,
		Path:      r.URL.Path,
		BodyHash:  hash,
		CreatedAt: s.cfg.Now().UTC(),
	}
	rec.LeaseUntil = rec.CreatedAt.Add(s.cfg.IdempotencyLease)
	existing, claimed, err := s.store.BeginIdempotent(r.Context(), rec)
	if err != nil {
		writeError(w, r, err)
		return nil, true
	}
	if claimed {
		return &idemClaim{s: s, rec: rec}, false
	}
	switch {
	case existing.Method != rec.Method || existing.Path != rec.Path || existing.BodyHash != rec.BodyHash:
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeUnprocessable, "Idempotency-Key %q was used with a different request", vidmatte.SafeText(k)))
	case !existing.Done:
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeConflict, "a request with Idempotency-Key %q is still in progress", vidmatte.SafeText(k)))
	default:
		if ri := infoFrom(r.Context()); ri != nil {
			ri.replay = true
		}
		h := w.Header()
		ct := existing.ContentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		h.Set("Idempotent-Replayed", "true")
		w.WriteHeader(existing.Status)
		_, _ = w.Write(existing.Body)
	}
	return nil, true
}

// finish keeps the response for replay; a server error or a rate limit is
// not kept, so that a retry runs again.
func (c *idemClaim) finish(ctx context.Context, status int, contentType string, body []byte) {
	if c == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if status >= 500 || status == http.StatusTooManyRequests || status == 0 {
		c.abandon(ctx)
		return
	}
	c.rec.Done = true
	c.rec.Status = status
	c.rec.ContentType = contentType
	c.rec.Body = body
	if err := c.s.store.FinishIdempotent(ctx, c.rec); err != nil {
		loggerFrom(ctx).Error("keeping idempotent response", slog.Any("error", err))
	}
}

func (c *idemClaim) abandon(ctx context.Context) {
	if c == nil {
		return
	}
	if err := c.s.store.AbandonIdempotent(context.WithoutCancel(ctx), c.rec.KeyID, c.rec.Key); err != nil {
		loggerFrom(ctx).Error("abandoning idempotency claim", slog.Any("error", err))
	}
}

// serveIdempotent runs a JSON POST: the body is read whole (bounded by the
// body limit), fingerprinted, and the handler runs only when its key is
// new; its response is captured and kept.
func (s *Server) serveIdempotent(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	if r.Header.Get("Idempotency-Key") == "" {
		h(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	if err != nil {
		writeError(w, r, bodyReadError(err, s.cfg.Limits.MaxBodyBytes))
		return
	}
	sum := sha256.New()
	sum.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	sum.Write(body)
	claim, done := s.beginIdempotent(w, r, hex.EncodeToString(sum.Sum(nil)))
	if done {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	claim.run(w, r, h)
}

// run answers a claimed request, under a context that makes the store
// record what it changes in the claim, and keeps the response. A claim
// taken over from a request that died after its change is answered with
// the resource it changed, without running the handler again.
func (c *idemClaim) run(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	ctx := r.Context()
	r = r.WithContext(vidmatte.WithIdempotencyClaim(ctx, c.rec.KeyID, c.rec.Key))
	cw := &captureWriter{ResponseWriter: w}
	completed := false
	defer func() {
		if !completed {
			c.abandon(ctx)
		}
	}()
	if c.rec.Resource != "" {
		loggerFrom(ctx).Info("idempotent retry answered from the change its first request made", slog.String("resource", c.rec.Resource))
		c.s.replayResource(cw, r, c.rec.Resource)
	} else {
		h(cw, r)
	}
	completed = true
	c.finish(ctx, cw.status, cw.Header().Get("Content-Type"), cw.buf.Bytes())
}

// replayResource answers as the first request would have, from the job or
// upload it made or changed.
func (s *Server) replayResource(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	key := keyFrom(ctx)
	if strings.HasPrefix(id, "vid_") {
		up, err := s.svc.FindUpload(ctx, key.ID, id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, s.renderUpload(up, s.baseURL(r)))
		return
	}
	j, err := s.store.FindJob(ctx, key.ID, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	setJobID(ctx, j.ID)
	out := s.renderJob(j, s.baseURL(r))
	if r.URL.Path != "/v1/jobs" {
		writeJSON(w, http.StatusOK, out)
		return
	}
	ok := true
	out.Success, out.Message = &ok, createdMessage(j)
	writeJSON(w, http.StatusCreated, out)
}

// captureWriter keeps a copy of a (small, JSON) response.
type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

// bodyReadError turns a failed body read into the vocabulary.
func bodyReadError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return vidmatte.Errorf(vidmatte.CodeTooLarge, "request body larger than %d bytes", limit)
	}
	var ve *vidmatte.Error
	if errors.As(err, &ve) {
		return err
	}
	return vidmatte.Wrap(err, vidmatte.CodeInvalid, "could not read the request body")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
