package handshake

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics, registered once per process with Prometheus' default registry.
var (
	resultsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peernode", Subsystem: "handshake", Name: "results_total",
		Help: "Handshakes by result (verified, pending, rejected: we refused; refused: the peer refused us; failed: I/O or timeout), rejection reason and direction.",
	}, []string{"result", "reason", "direction"})
	durationSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "peernode", Subsystem: "handshake", Name: "duration_seconds",
		Help:    "Time from the start of a handshake session to its outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms to 8 s
	}, []string{"direction"})
)

func init() {
	prometheus.MustRegister(resultsTotal, durationSeconds)
}

// observe records a finished session.
func observe(r Report, started time.Time) {
	dir := "inbound"
	if r.Initiator {
		dir = "outbound"
	}
	result, reason := r.Outcome.String(), "none"
	var rej *RejectError
	switch {
	case errors.As(r.Err, &rej) && rej.Remote:
		result, reason = "refused", rej.Reason.String()
	case errors.As(r.Err, &rej):
		result, reason = "rejected", rej.Reason.String()
	case r.Err != nil:
		result, reason = "failed", "io"
	}
	resultsTotal.WithLabelValues(result, reason, dir).Inc()
	durationSeconds.WithLabelValues(dir).Observe(time.Since(started).Seconds())
}
