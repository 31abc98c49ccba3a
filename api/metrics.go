package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"vidmatte"
)

// Metrics are the daemon's Prometheus metrics, in a registry of their own:
//
//	vidmatte_http_requests_total{route,method,code}
//	vidmatte_http_request_duration_seconds{route,method}  (exemplar: request_id)
//	vidmatte_jobs{status}                 jobs by status, read at scrape
//	vidmatte_queue_depth                  queued jobs, read at scrape
//	vidmatte_jobs_finished_total{status}  jobs that ended in this process
//	vidmatte_frames_processed_total
//	vidmatte_inference_seconds_total      time spent in the model
//	vidmatte_job_duration_seconds         processing time of finished jobs
//	vidmatte_webhook_attempts_total{outcome}
//	vidmatte_job_leases_total{event}      rescued, lost, heartbeat_failed, store_retry (this daemon)
//	vidmatte_jobs_running                 jobs running in this daemon
//	vidmatte_stage_seconds_total{stage,state}  pipeline stages' busy and wait time
//
// The latency exemplars carry request ids; they are exposed in the
// OpenMetrics format (Accept: application/openmetrics-text). No metric,
// label or exemplar names a job or a key: /metrics may be scraped by anyone
// who reaches it, and a job id is a handle on another tenant's files.
type Metrics struct {
	reg       *prometheus.Registry
	handler   http.Handler
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	finished  *prometheus.CounterVec
	frames    prometheus.Counter
	infer     prometheus.Counter
	jobTime   prometheus.Histogram
	webhooks  *prometheus.CounterVec
	leases    *prometheus.CounterVec
	running   prometheus.Gauge
	stages    *prometheus.CounterVec
	queued    *prometheus.CounterVec
	takes     *prometheus.CounterVec
	storeOnce sync.Once
}

// NewMetrics returns the metrics, with Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_http_requests_total", Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vidmatte_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_jobs_finished_total", Help: "Jobs that ended in this process, by final status.",
	}, []string{"status"})
	m.frames = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vidmatte_frames_processed_total", Help: "Video frames processed by finished jobs.",
	})
	m.infer = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vidmatte_inference_seconds_total", Help: "Time spent running models.",
	})
	m.jobTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vidmatte_job_duration_seconds", Help: "Processing time of finished jobs.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_webhook_attempts_total", Help: "Webhook delivery attempts by outcome (delivered, retry, failed).",
	}, []string{"outcome"})
	m.leases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_job_leases_total", Help: "Job lease and runner-write events in this daemon: rescued (taken back after its lease ran out), lost (taken by another daemon), heartbeat_failed, store_retry.",
	}, []string{"event"})
	m.running = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vidmatte_jobs_running", Help: "Jobs running in this daemon.",
	})
	m.stages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_stage_seconds_total", Help: "Time the pipeline stages of finished jobs spent busy or waiting on their queues, by stage.",
	}, []string{"stage", "state"})
	m.queued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_stage_queue_items_total", Help: "Items the pipeline stages of finished jobs found waiting in their input queues, summed over their takes (divided by vidmatte_stage_queue_takes_total: the mean depth).",
	}, []string{"stage"})
	m.takes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vidmatte_stage_queue_takes_total", Help: "Times the pipeline stages of finished jobs took their next input from their queues.",
	}, []string{"stage"})
	m.reg.MustRegister(m.requests, m.latency, m.finished, m.frames, m.infer, m.jobTime, m.webhooks, m.leases, m.running, m.stages, m.queued, m.takes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler { return m.handler }

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration, requestID string) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	o := m.latency.WithLabelValues(route, method)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && requestID != "" && len(requestID) <= 64 {
		eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"request_id": requestID})
		return
	}
	o.Observe(d.Seconds())
}

// ObserveJob records a job that ended in this process: its status, the
// frames it processed, the time in the model and the whole processing time.
// The job id is not recorded anywhere in the metrics.
func (m *Metrics) ObserveJob(_ string, status vidmatte.Status, frames int64, infer, elapsed time.Duration) {
	m.finished.WithLabelValues(string(status)).Inc()
	if frames > 0 {
		m.frames.Add(float64(frames))
	}
	if infer > 0 {
		m.infer.Add(infer.Seconds())
	}
	if elapsed > 0 {
		m.jobTime.Observe(elapsed.Seconds())
	}
}

// ObserveLease counts n lease events of a kind (see engine.LeaseMetrics).
func (m *Metrics) ObserveLease(event string, n int) { m.leases.WithLabelValues(event).Add(float64(n)) }

// ObserveStages adds a finished job's stage times.
func (m *Metrics) ObserveStages(_ string, stages []vidmatte.StageTime) {
	for _, st := range stages {
		m.stages.WithLabelValues(st.Name, "busy").Add(st.Busy.Seconds())
		m.stages.WithLabelValues(st.Name, "wait").Add(st.Wait.Seconds())
		if st.Takes > 0 {
			m.queued.WithLabelValues(st.Name).Add(float64(st.Queued))
			m.takes.WithLabelValues(st.Name).Add(float64(st.Takes))
		}
	}
}

// SetRunning sets how many jobs run in this daemon.
func (m *Metrics) SetRunning(n int) { m.running.Set(float64(n)) }

// ObserveWebhook counts a webhook delivery attempt by outcome.
func (m *Metrics) ObserveWebhook(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// watchStore adds the gauges read from the store at scrape time.
func (m *Metrics) watchStore(s vidmatte.JobService) {
	m.storeOnce.Do(func() { m.reg.MustRegister(&jobCollector{store: s}) })
}

var (
	jobsDesc  = prometheus.NewDesc("vidmatte_jobs", "Jobs by status.", []string{"status"}, nil)
	queueDesc = prometheus.NewDesc("vidmatte_queue_depth", "Jobs waiting in the queue.", nil, nil)
)

type jobCollector struct{ store vidmatte.JobService }

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- queueDesc
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.CountJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, st := range []vidmatte.Status{vidmatte.StatusPending, vidmatte.StatusQueued, vidmatte.StatusProcessing,
		vidmatte.StatusCompleted, vidmatte.StatusFailed, vidmatte.StatusCanceled} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts[vidmatte.StatusQueued]))
}
