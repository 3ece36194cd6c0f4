package api

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ScoreExplanation is the answer to GET /v1/peers/{node}/score: a node's
// score broken into its components, whose contributions add up to Score.
type ScoreExplanation struct {
	NodeID string `json:"node_id"`
	// Score is in [0, 1]; higher is better.
	Score float64 `json:"score"`
	// RTTMillis is the smoothed round-trip time in milliseconds (handshake
	// and pings); absent before any sample.
	RTTMillis *float64 `json:"rtt_ms,omitempty"`
	// Reliability is the reliability component's value, in [0, 1].
	Reliability float64 `json:"reliability"`
	// Components are latency, reliability, freshness and penalty, in that
	// order; never null.
	Components []ScoreComponent `json:"components"`
}

// ScoreComponent is one term of a score.
type ScoreComponent struct {
	// Name is latency, reliability, freshness or penalty.
	Name string `json:"name"`
	// Value is in [0, 1]; Contribution is Weight × Value.
	Weight       float64 `json:"weight"`
	Value        float64 `json:"value"`
	Contribution float64 `json:"contribution"`
	// Samples is how many samples the value rests on; 0 means it is the
	// prior.
	Samples int `json:"samples"`
	// Last is when the newest sample came; absent without one.
	Last time.Time `json:"last,omitzero"`
	// Detail says, for people, what the value was computed from.
	Detail string `json:"detail"`
}

// HasSamples reports whether any component rests on a sample: false for a
// node the score book knows nothing about.
func (e ScoreExplanation) HasSamples() bool {
	return slices.ContainsFunc(e.Components, func(c ScoreComponent) bool { return c.Samples > 0 })
}

// PingResult is the answer to POST /v1/peers/{node}/ping, whether every
// ping succeeded (200) or not (502).
type PingResult struct {
	NodeID string `json:"node_id"`
	// RTTsMillis are the round-trip times of the pings that succeeded, in
	// milliseconds, in order; never null. Pings stop at the first failure.
	RTTsMillis []float64 `json:"rtts_ms"`
	// Error says why the pings stopped early; absent when all succeeded.
	Error string `json:"error,omitempty"`
}

// Bounds of POST /v1/peers/{node}/ping?count=N.
const (
	// PingParamCount is the query parameter with the number of pings.
	PingParamCount = "count"
	// DefaultPingCount is the number of pings without a count.
	DefaultPingCount = 3
	// MaxPingCount caps the pings of one request: each may take the
	// daemon's ping timeout, and the request is held open meanwhile.
	MaxPingCount = 100
)

// PingCountError is a ping count that is malformed or out of range.
type PingCountError struct {
	// Value is what was given.
	Value string
}

func (e *PingCountError) Error() string {
	return fmt.Sprintf("ping count %s: want an integer from 1 to %d", e.Value, MaxPingCount)
}

// ValidatePingCount checks a ping count; the error is a *PingCountError.
func ValidatePingCount(n int) error {
	if n < 1 || n > MaxPingCount {
		return &PingCountError{Value: strconv.Itoa(n)}
	}
	return nil
}

// ParsePingQuery reads POST /v1/peers/{node}/ping's query: count at most
// once (DefaultPingCount when absent), nothing else.
func ParsePingQuery(rawQuery string) (int, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, fmt.Errorf("ping query %q: %w", rawQuery, err)
	}
	for k := range q {
		if k != PingParamCount {
			return 0, fmt.Errorf("unknown ping parameter %q: want %s", k, PingParamCount)
		}
	}
	vs, ok := q[PingParamCount]
	switch {
	case !ok:
		return DefaultPingCount, nil
	case len(vs) != 1:
		return 0, fmt.Errorf("ping parameter %s given %d times: give it once", PingParamCount, len(vs))
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil {
		return 0, &PingCountError{Value: vs[0]}
	}
	return n, ValidatePingCount(n)
}

// SortPeers orders GET /v1/peers: best score first; among equal scores,
// verified nodes first, then by node ID.
func SortPeers(ps []PeerInfo) {
	slices.SortStableFunc(ps, func(a, b PeerInfo) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		va, vb := a.Status == PeerStatusVerified, b.Status == PeerStatusVerified
		switch {
		case va && !vb:
			return -1
		case vb && !va:
			return 1
		}
		return strings.Compare(a.NodeID, b.NodeID)
	})
}

// Millis turns a duration into milliseconds, as the API gives them.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
