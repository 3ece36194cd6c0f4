package main

// End-to-end tests of peer scores and pings, driven through the CLI
// against running daemons. mDNS stays off: the daemons find each other
// through --bootstrap alone.

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// explainJSON is `peernode peers --explain NODE --json`.
type explainJSON struct {
	NodeID      string          `json:"node_id"`
	Score       float64         `json:"score"`
	RTTMs       *float64        `json:"rtt_ms"`
	Reliability float64         `json:"reliability"`
	Components  []componentJSON `json:"components"`
}

// componentJSON is one component of a score explanation.
type componentJSON struct {
	Name         string  `json:"name"`
	Weight       float64 `json:"weight"`
	Value        float64 `json:"value"`
	Contribution float64 `json:"contribution"`
	Samples      int     `json:"samples"`
	Last         string  `json:"last"`
	Detail       string  `json:"detail"`
}

// explainOf runs `peernode peers --explain id --json` on dataDir and checks
// the answer's shape and sum.
func explainOf(t *testing.T, dataDir, id string) explainJSON {
	t.Helper()
	r := peernode(t, "peers", "--explain", id, "--json", "--data-dir", dataDir)
	var raw struct {
		Components []map[string]any `json:"components"`
	}
	decodeJSON(t, r, &raw)
	for _, c := range raw.Components {
		requireKeys(t, c, "name", "weight", "value", "contribution", "samples", "detail")
	}
	var e explainJSON
	decodeJSON(t, r, &e)
	require.Equal(t, id, e.NodeID, "%s", r)
	names := make([]string, 0, len(e.Components))
	sum := 0.0
	for _, c := range e.Components {
		names = append(names, c.Name)
		sum += c.Contribution
		require.InDelta(t, c.Weight*c.Value, c.Contribution, 1e-12, "%s: %s", c.Name, r)
	}
	require.Equal(t, []string{"latency", "reliability", "freshness", "penalty"}, names, "%s", r)
	require.InDelta(t, e.Score, sum, 1e-9, "the contributions add up to the score: %s", r)
	require.True(t, e.Score >= 0 && e.Score <= 1, "%s", r)
	return e
}

// rttLine is a line `peernode ping` prints per answered ping.
var rttLine = regexp.MustCompile(`^rtt \d+\.\d\d ms$`)

// Three daemons, beta and gamma bootstrapped from alpha: alpha lists both
// with scores, best first; explains a score whose parts add up; pings beta
// through the CLI, and the pings count towards beta's reliability.
func TestDaemonScoresAndPing(t *testing.T) {
	t.Parallel()
	a := startDaemon(t, t.TempDir(), "alpha")
	b := startDaemon(t, t.TempDir(), "beta", "--bootstrap", a.addr())
	c := startDaemon(t, t.TempDir(), "gamma", "--bootstrap", a.addr())
	waitPeer(t, a.dir, b.id, "verified", isStatus("verified"))
	waitPeer(t, a.dir, c.id, "verified", isStatus("verified"))

	// peers checks every score and reliability is in [0, 1] and the order.
	ps := peers(t, a.dir)
	require.GreaterOrEqual(t, len(ps), 2)
	for _, id := range []string{b.id, c.id} {
		p, ok := findPeer(ps, id)
		require.True(t, ok)
		require.NotNil(t, p.RTTMs, "a verified peer has an RTT sample from its handshake: %v", p)
	}

	before := explainOf(t, a.dir, b.id)
	require.NotNil(t, before.RTTMs)

	r := peernode(t, "ping", b.id, "--count", "2", "--data-dir", a.dir)
	require.Equal(t, 0, r.code, "%s", r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, "two RTTs and a summary: %s", r)
	for _, l := range lines[:2] {
		require.Regexp(t, rttLine, l, "%s", r)
	}
	require.Regexp(t, `^2 of 2 pings to `+b.id+` answered: min \d+\.\d\d ms, avg \d+\.\d\d ms, max \d+\.\d\d ms$`, lines[2])

	after := explainOf(t, a.dir, b.id)
	require.GreaterOrEqual(t, after.Components[1].Samples, before.Components[1].Samples+2,
		"both pings count as reliability samples: before %+v, after %+v", before.Components[1], after.Components[1])
	require.NotEmpty(t, after.Components[1].Last)

	r = peernode(t, "peers", "--explain", b.id, "--data-dir", a.dir)
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^total\s+\d\.\d{3}\s*$`, r.stdout, "%s", r)

	// Pinging oneself is refused by the daemon; a node no one knows has
	// no score to explain; a bad count never reaches the daemon.
	r = peernode(t, "ping", a.id, "--count", "1", "--data-dir", a.dir)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "this node", "%s", r)
	r = peernode(t, "peers", "--explain", testNodeID, "--data-dir", a.dir)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "404", "%s", r)
	r = peernode(t, "ping", b.id, "--count", "101", "--data-dir", a.dir)
	require.Equal(t, 2, r.code, "%s", r)
}
