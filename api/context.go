package api

import (
	"context"
	"log/slog"

	"vidmatte"
)

type ctxKey int

const (
	ctxRequest ctxKey = iota
)

// requestInfo is what the middleware learns about a request as it goes:
// its id, its logger, the key that made it and the job it is about. The
// access-log line and the metrics read it after the handler.
type requestInfo struct {
	id     string
	log    *slog.Logger
	key    *vidmatte.Key
	jobID  string
	route  string
	host   string
	replay bool
}

func withInfo(ctx context.Context, ri *requestInfo) context.Context {
	return context.WithValue(ctx, ctxRequest, ri)
}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(ctxRequest).(*requestInfo)
	return ri
}

// requestIDFrom returns the request id of ctx, or "".
func requestIDFrom(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// loggerFrom returns the request's logger (which carries request_id, and
// key_id once known), or the default logger.
func loggerFrom(ctx context.Context) *slog.Logger {
	if ri := infoFrom(ctx); ri != nil && ri.log != nil {
		return ri.log
	}
	return slog.Default()
}

// keyFrom returns the authenticated key of the request.
func keyFrom(ctx context.Context) *vidmatte.Key {
	if ri := infoFrom(ctx); ri != nil {
		return ri.key
	}
	return nil
}

// setJobID records the job a request is about, for the access log.
func setJobID(ctx context.Context, id string) {
	if ri := infoFrom(ctx); ri != nil && ri.jobID == "" {
		ri.jobID = id
		ri.log = ri.log.With(slog.String("job_id", id))
	}
}

// acceptRequestID reports whether a client-sent X-Request-Id may be kept:
// at most 128 characters, all printable ASCII without spaces or quotes.
func acceptRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
