package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"vidmatte"
)

// The stream of a key's job changes (GET /v1/jobs/events) polls the store
// rather than listening inside this process, so that it sees every change
// whichever daemon of a cluster made it (the runner that reports progress
// may be another machine's). Each tick reads the key's jobs whose
// updated_at is at or after the newest one already seen less
// eventsMargin, and sends those whose status or progress differ from what
// this stream last sent of them. The margin covers clocks that differ
// between daemons and a transaction that commits after a later one began:
// a change stamped up to eventsMargin before the newest one seen is still
// found.
const (
	eventsMargin    = 5 * time.Second
	eventsHeartbeat = 15 * time.Second
	eventsPage      = 100
	// eventsRetry is the reconnection delay the stream asks browsers for.
	eventsRetry = 2 * time.Second
)

// sentState is what a stream last sent of a job.
type sentState struct {
	status   vidmatte.Status
	progress int
	at       time.Time // its updated_at
}

// handleJobEvents streams the key's job changes as server-sent events:
// "event: job", the job object as data, and the job's updated_at (unix
// nanoseconds) as the event id. Delivery is at least once: a client that
// reconnects with Last-Event-ID resumes from there, and may get again the
// changes of the few seconds before it; a new stream starts with the changes
// of the last few seconds, so a client that lists its jobs and then
// subscribes misses nothing between the two. A comment line every 15 s
// keeps proxies from closing an idle stream. The stream ends with the
// request, or with an "event: error" carrying the structured error when
// the store fails (the browser reconnects by itself).
func (s *Server) handleJobEvents(w http.ResponseWriter, r *http.Request, _ params) {
	ctx := r.Context()
	q, err := parseQuery(r.URL.RawQuery)
	if err == nil {
		err = q.done()
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	cursor := now.Add(-eventsMargin)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, r, vidmatte.Errorf(vidmatte.CodeInvalid, "Last-Event-ID must be an event id of this stream"))
			return
		}
		cursor = time.Unix(0, n).UTC().Add(-eventsMargin)
	}
	rc := http.NewResponseController(w)
	// The stream outlives any write deadline of the server.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: " + strconv.FormatInt(eventsRetry.Milliseconds(), 10) + "\n: job changes of this key\n\n")
	if !s.flushEvents(w, rc, &buf) {
		return
	}

	keyID := keyFrom(ctx).ID
	base := s.baseURL(r)
	log := loggerFrom(ctx)
	sent := map[string]sentState{}
	tick := time.NewTicker(s.cfg.EventsInterval)
	defer tick.Stop()
	quiet := time.Now()
	for {
		newest, err := s.sendChanges(ctx, &buf, keyID, base, cursor, sent)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("job events: reading changes", slog.Any("error", err))
			body, _ := json.Marshal(errorBody{Error: errorDetail{Code: vidmatte.CodeUnavailable, Message: "the job stream was interrupted; reconnect", RequestID: requestIDFrom(ctx)}})
			buf.WriteString("event: error\ndata: ")
			buf.Write(body)
			buf.WriteString("\n\n")
			s.flushEvents(w, rc, &buf)
			return
		}
		if newest.After(cursor.Add(eventsMargin)) {
			cursor = newest.Add(-eventsMargin)
			for id, st := range sent { // what can no longer be read again
				if st.at.Before(cursor) {
					delete(sent, id)
				}
			}
		}
		if buf.Len() == 0 && time.Since(quiet) >= eventsHeartbeat {
			buf.WriteString(": keep-alive\n\n")
		}
		if buf.Len() > 0 {
			quiet = time.Now()
			if !s.flushEvents(w, rc, &buf) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.streamsDone:
			return
		case <-tick.C:
		}
	}
}

// sendChanges writes into buf the key's jobs changed at or after since
// whose status or progress differ from what sent records, and returns the
// newest updated_at read.
func (s *Server) sendChanges(ctx context.Context, buf *bytes.Buffer, keyID, base string, since time.Time, sent map[string]sentState) (time.Time, error) {
	newest := since
	for {
		js, err := s.store.JobsChangedSince(ctx, keyID, since, eventsPage)
		if err != nil {
			return newest, err
		}
		for _, j := range js {
			if j.UpdatedAt.After(newest) {
				newest = j.UpdatedAt
			}
			if st, ok := sent[j.ID]; ok && st.status == j.Status && st.progress == j.Progress {
				sent[j.ID] = sentState{status: st.status, progress: st.progress, at: j.UpdatedAt}
				continue
			}
			body, err := json.Marshal(s.renderJob(j, base))
			if err != nil {
				return newest, err
			}
			buf.WriteString("id: " + strconv.FormatInt(j.UpdatedAt.UnixNano(), 10) + "\nevent: job\ndata: ")
			buf.Write(body)
			buf.WriteString("\n\n")
			sent[j.ID] = sentState{status: j.Status, progress: j.Progress, at: j.UpdatedAt}
		}
		// A full page: read on from its last change. A page of changes all
		// stamped the same nanosecond cannot advance; the next tick reads
		// it again and finds nothing new to send.
		if len(js) < eventsPage || !js[len(js)-1].UpdatedAt.After(since) {
			return newest, nil
		}
		since = js[len(js)-1].UpdatedAt
	}
}

// flushEvents writes buf to the client and flushes it; false when the
// client is gone.
func (s *Server) flushEvents(w http.ResponseWriter, rc *http.ResponseController, buf *bytes.Buffer) bool {
	_, err := w.Write(buf.Bytes())
	buf.Reset()
	if err == nil {
		err = rc.Flush()
	}
	return err == nil
}

// EndStreams ends every open stream of job changes, so that a shutting
// down server does not wait for them (http.Server.RegisterOnShutdown).
func (s *Server) EndStreams() { s.endStreams.Do(func() { close(s.streamsDone) }) }
