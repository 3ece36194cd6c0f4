package storage

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"peernode/protocols/storage/store"
)

// Metrics, registered once per process with Prometheus' default registry
// and shared by every node of the process. The store's gauges (blobs and
// bytes held) are read at scrape time by the node, which knows its stores.
var (
	operationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peernode", Subsystem: "storage", Name: "operations_total",
		Help: "Storage requests by operation (put, get, has, stat; unknown for a request that could not be read), " +
			"side (served: a peer asked us; client: we asked a peer) and result (ok, not_found, bad_data, quota, " +
			"too_large, busy, refused, malformed, timeout, error).",
	}, []string{"op", "side", "result"})
	bytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peernode", Subsystem: "storage", Name: "bytes_total",
		Help: "Blob data moved by storage transfers (put and get, served and client, encoded: content plus its BLAKE3 tree), " +
			"by direction (sent, received), including transfers that failed part-way; headers are not counted.",
	}, []string{"direction"})
	durationSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "peernode", Subsystem: "storage", Name: "duration_seconds",
		Help: "How long successful storage requests took, by operation (put, get, has, stat) and side (served, client): " +
			"from the request to the last byte, a get on the client side from asking the holder that answered.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms to 4.4 min
	}, []string{"op", "side"})
	bytesSent     = bytesTotal.WithLabelValues("sent")
	bytesReceived = bytesTotal.WithLabelValues("received")
)

func init() {
	prometheus.MustRegister(operationsTotal, bytesTotal, durationSeconds)
}

// Sides of an operation.
const (
	sideServed = "served"
	sideClient = "client"
)

// observeOp counts one request's outcome.
func observeOp(o op, side string, err error) {
	operationsTotal.WithLabelValues(o.String(), side, resultOf(err)).Inc()
}

// observeDone counts one request's outcome and, if it succeeded, how long
// it took since started.
func observeDone(o op, side string, started time.Time, err error) {
	if err == nil {
		durationSeconds.WithLabelValues(o.String(), side).Observe(time.Since(started).Seconds())
	}
	observeOp(o, side, err) // last: who sees the count sees the time too
}

// resultOf is an error's label value.
func resultOf(err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrBadData):
		return "bad_data"
	case errors.Is(err, store.ErrQuota):
		return "quota"
	case errors.Is(err, store.ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLargeHeader), errors.Is(err, store.ErrBadRange):
		return "malformed"
	case errors.Is(err, ErrStalled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}

// addBytes counts n bytes moved in one direction.
func addBytes(c prometheus.Counter, n int64) {
	if n > 0 {
		c.Add(float64(n))
	}
}
