// Package metrics is the service's Prometheus metrics: HTTP and GraphQL
// counters and latencies measured as requests pass, and the state of the
// log (subscription lag, job queue, oldest open writing transaction)
// read at each scrape, so a scrape always shows the current truth.
package metrics

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imageservice/imageservice/eventstore"
)

// Source reports, at scrape time, what the collector publishes. Each
// function may be nil when the service has no such part.
type Source struct {
	// Lags returns each subscription partition's lag: events behind and
	// seconds since the oldest unhandled event was recorded.
	Lags func(ctx context.Context) (map[string][2]float64, error)
	// Jobs returns the job queue's counts by state, and the dither
	// processing time's p50 and p95 in seconds.
	Jobs func(ctx context.Context) (states map[string]float64, p50, p95 float64, err error)
	// OldestWriteTx returns the age in seconds of the oldest open
	// transaction that holds a transaction id (it holds back readers).
	OldestWriteTx func(ctx context.Context) (float64, error)
	// ReadCache returns how many image(id) answers came from the read
	// cache (hits) and from the read model (misses) so far.
	ReadCache func() (hits, misses uint64)
}

// Registry holds the service's metrics.
type Registry struct {
	reg      *prometheus.Registry
	log      *slog.Logger
	requests *prometheus.HistogramVec
	ops      *prometheus.HistogramVec
	appends  *prometheus.HistogramVec
	appended prometheus.Counter
	publish  *prometheus.HistogramVec
	sent     *prometheus.CounterVec
	sweeps   *prometheus.CounterVec
	purged   prometheus.Counter
	purgedB  prometheus.Counter
}

// New returns a registry of the HTTP, GraphQL and append metrics and the
// Go runtime's and the process's; Publish adds the state read at each
// scrape.
func New(log *slog.Logger) *Registry {
	r := &Registry{
		log: log,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imageservice_http_request_duration_seconds", Help: "HTTP requests by route and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imageservice_graphql_operation_duration_seconds", Help: "GraphQL operations by type and outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "outcome"}),
		appends: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imageservice_append_duration_seconds", Help: "Appends to the event log by outcome (ok, conflict, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imageservice_appended_events_total", Help: "Events appended to the log.",
		}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imageservice_bridge_publish_duration_seconds", Help: "Batches published by the bridges, by sink and outcome (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"sink", "outcome"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageservice_bridge_published_messages_total", Help: "Messages the bridges' brokers acknowledged, by sink.",
		}, []string{"sink"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageservice_blob_sweeps_total", Help: "Sweeps of unused blobs run on this replica, by outcome (ok, error).",
		}, []string{"outcome"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imageservice_blobs_purged_total", Help: "Unused blobs purged by this replica's sweeps.",
		}),
		purgedB: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imageservice_blob_purged_bytes_total", Help: "Bytes of the unused blobs purged by this replica's sweeps.",
		}),
	}
	r.reg.MustRegister(r.requests, r.ops, r.appends, r.appended, r.publish, r.sent, r.sweeps, r.purged, r.purgedB,
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return r
}

// Publish adds src's readings (subscription lag, job queue, oldest
// transaction, read cache) to every scrape. Call it once.
func (r *Registry) Publish(src Source) {
	r.reg.MustRegister(&collector{src: src, log: r.log})
	if src.ReadCache != nil {
		r.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "imageservice_read_cache_hits_total", Help: "image(id) answers served from the read cache.",
			}, func() float64 { hits, _ := src.ReadCache(); return float64(hits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "imageservice_read_cache_misses_total", Help: "image(id) answers read from the read model.",
			}, func() float64 { _, misses := src.ReadCache(); return float64(misses) }),
		)
	}
}

// ObserveAppend records one append to the log; it is an
// eventstore.AppendObserver. A wrong expected version is a "conflict"
// (a command racing another, retried by its caller), not an error.
func (r *Registry) ObserveAppend(events int, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, eventstore.ErrWrongVersion):
		outcome = "conflict"
	case err != nil:
		outcome = "error"
	default:
		r.appended.Add(float64(events))
	}
	r.appends.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObservePublish records one batch published by a bridge; it is a
// bridge.PublishObserver.
func (r *Registry) ObservePublish(sink string, messages int, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	} else {
		r.sent.WithLabelValues(sink).Add(float64(messages))
	}
	r.publish.WithLabelValues(sink, outcome).Observe(d.Seconds())
}

// ObserveSweep records one sweep of unused blobs: the blobs and bytes it
// purged (also when it failed part way) and its error, nil on success.
func (r *Registry) ObserveSweep(blobs int, bytes int64, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.sweeps.WithLabelValues(outcome).Inc()
	r.purged.Add(float64(blobs))
	r.purgedB.Add(float64(bytes))
}

// Handler serves the metrics in Prometheus's text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// ObserveOperation records one GraphQL operation ("query", "mutation",
// "subscription") and whether it had errors.
func (r *Registry) ObserveOperation(operation string, failed bool, d time.Duration) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	r.ops.WithLabelValues(operation, outcome).Observe(d.Seconds())
}

// Middleware measures the requests to next under a route label.
func (r *Registry) Middleware(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, req)
		r.requests.WithLabelValues(route, req.Method, strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes flushes on, for server-sent events.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Hijack passes the connection on, for websockets.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.status = http.StatusSwitchingProtocols
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

var (
	lagEvents  = prometheus.NewDesc("imageservice_subscription_lag_events", "Events not yet handled by a subscription partition.", []string{"subscription"}, nil)
	lagSeconds = prometheus.NewDesc("imageservice_subscription_lag_seconds", "Age of the oldest event not yet handled by a subscription partition.", []string{"subscription"}, nil)
	jobs       = prometheus.NewDesc("imageservice_jobs", "Jobs in the queue by state.", []string{"state"}, nil)
	ditherTime = prometheus.NewDesc("imageservice_dither_duration_seconds", "Processing time of the dithers completed in the last hour.", []string{"quantile"}, nil)
	oldestTx   = prometheus.NewDesc("imageservice_oldest_write_transaction_seconds", "Age of the oldest open transaction holding a transaction id; it holds back every reader of the log.", nil, nil)
)

// collector reads the Source at each scrape.
type collector struct {
	src Source
	log *slog.Logger
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lagEvents, lagSeconds, jobs, ditherTime, oldestTx} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.src.Lags != nil {
		lags, err := c.src.Lags(ctx)
		c.report("subscription lag", err)
		for name, lag := range lags {
			ch <- prometheus.MustNewConstMetric(lagEvents, prometheus.GaugeValue, lag[0], name)
			ch <- prometheus.MustNewConstMetric(lagSeconds, prometheus.GaugeValue, lag[1], name)
		}
	}
	if c.src.Jobs != nil {
		states, p50, p95, err := c.src.Jobs(ctx)
		c.report("job queue", err)
		for state, n := range states {
			ch <- prometheus.MustNewConstMetric(jobs, prometheus.GaugeValue, n, state)
		}
		if err == nil {
			ch <- prometheus.MustNewConstMetric(ditherTime, prometheus.GaugeValue, p50, "0.5")
			ch <- prometheus.MustNewConstMetric(ditherTime, prometheus.GaugeValue, p95, "0.95")
		}
	}
	if c.src.OldestWriteTx != nil {
		age, err := c.src.OldestWriteTx(ctx)
		c.report("oldest transaction", err)
		if err == nil {
			ch <- prometheus.MustNewConstMetric(oldestTx, prometheus.GaugeValue, age)
		}
	}
}

func (c *collector) report(what string, err error) {
	if err != nil {
		c.log.Warn("metrics: cannot read "+what, "err", err)
	}
}
