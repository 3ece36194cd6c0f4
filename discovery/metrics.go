package discovery

import "github.com/prometheus/client_golang/prometheus"

// Metrics, registered once per process with Prometheus' default registry
// and shared by every node of the process.
var (
	announcementsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peernode", Subsystem: "discovery", Name: "announcements_total",
		Help: "Announcements on the announcement topic: sent (result accepted: published; error: publishing failed) " +
			"and received from peers (result: the validator's accepted, rejected or ignored).",
	}, []string{"direction", "result"})
	prunesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peernode", Subsystem: "discovery", Name: "prunes_total",
		Help: "Members removed from the member table, by reason (stale: silent past the stale threshold; left: announced it leaves).",
	}, []string{"reason"})

	sentAccepted     = announcementsTotal.WithLabelValues("sent", "accepted")
	sentError        = announcementsTotal.WithLabelValues("sent", "error")
	receivedAccepted = announcementsTotal.WithLabelValues("received", "accepted")
	receivedRejected = announcementsTotal.WithLabelValues("received", "rejected")
	receivedIgnored  = announcementsTotal.WithLabelValues("received", "ignored")
	prunedStale      = prunesTotal.WithLabelValues("stale")
	prunedLeft       = prunesTotal.WithLabelValues("left")
)

func init() {
	prometheus.MustRegister(announcementsTotal, prunesTotal)
}
