package api

import (
	"net/http"
	"time"

	"vidmatte"
)

// usageDayJSON is one day of GET /v1/usage/summary.
type usageDayJSON struct {
	Date     string  `json:"date"`
	Jobs     int     `json:"jobs"`
	Seconds  float64 `json:"seconds"`
	Credits  float64 `json:"credits"`
	Refunded float64 `json:"refunded"`
}

// usageSummaryJSON is the answer of GET /v1/usage/summary.
type usageSummaryJSON struct {
	Days     int            `json:"days"`
	From     string         `json:"from"`
	To       string         `json:"to"`
	Daily    []usageDayJSON `json:"daily"`
	Totals   usageTotals    `json:"totals"`
	Balance  float64        `json:"balance"`
	Reserved float64        `json:"reserved"`
}

type usageTotals struct {
	Jobs     int     `json:"jobs"`
	Seconds  float64 `json:"seconds"`
	Credits  float64 `json:"credits"`
	Refunded float64 `json:"refunded"`
}

func (s *Server) handleUsageSummary(w http.ResponseWriter, r *http.Request, _ params) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, err)
		return
	}
	days, err := q.integer("days", 30, 1, 90)
	if err == nil {
		err = q.done()
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	sum, err := s.store.UsageSummary(r.Context(), keyFrom(r.Context()).ID, days, now)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := usageSummaryJSON{
		Days:     days,
		From:     now.AddDate(0, 0, 1-days).Format(time.DateOnly),
		To:       now.Format(time.DateOnly),
		Daily:    make([]usageDayJSON, 0, len(sum.Days)),
		Totals:   usageTotals{Jobs: sum.TotalJobs, Seconds: sum.TotalSeconds, Credits: sum.TotalCredits, Refunded: sum.TotalRefunded},
		Balance:  sum.Balance,
		Reserved: sum.Reserved,
	}
	for _, d := range sum.Days {
		out.Daily = append(out.Daily, usageDayJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// usageEventJSON is one ledger event of GET /v1/usage/events.
type usageEventJSON struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	JobID     *string `json:"job_id"`
	Credits   float64 `json:"credits"`
	Seconds   float64 `json:"seconds"`
	Model     *string `json:"model"`
	CreatedAt string  `json:"created_at"`
}

type usageEventsJSON struct {
	Events []usageEventJSON `json:"events"`
	Limit  int              `json:"limit"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) handleUsageEvents(w http.ResponseWriter, r *http.Request, _ params) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, err := q.integer("limit", 20, 1, 100)
	if err == nil {
		err = q.done()
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	evs, err := s.store.UsageEvents(r.Context(), keyFrom(r.Context()).ID, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := usageEventsJSON{Events: make([]usageEventJSON, 0, len(evs)), Limit: limit}
	for _, e := range evs {
		out.Events = append(out.Events, ledgerJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func ledgerJSON(e vidmatte.LedgerEvent) usageEventJSON {
	return usageEventJSON{ID: e.ID, Type: e.Type, JobID: optional(e.JobID), Credits: e.Credits,
		Seconds: e.Seconds, Model: optional(e.Model), CreatedAt: timeText(e.CreatedAt)}
}
