package main

// End-to-end tests of the member table and the crawl, driven through the
// CLI against running daemons. mDNS stays off: the daemons find each other
// through --bootstrap alone.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crawlJSON is `peernode crawl --json`.
type crawlJSON struct {
	Nodes     []crawledJSON `json:"nodes"`
	Members   int           `json:"members"`
	Dropped   int           `json:"dropped"`
	Unvisited int           `json:"unvisited"`
	TimedOut  bool          `json:"timed_out"`
	ElapsedMs float64       `json:"elapsed_ms"`
}

// crawledJSON is one node of a crawl.
type crawledJSON struct {
	NodeID         string   `json:"node_id"`
	Depth          int      `json:"depth"`
	Via            string   `json:"via"`
	Name           string   `json:"name"`
	Addrs          []string `json:"addrs"`
	ConnectedCount int      `json:"connected_count"`
	Connected      []string `json:"connected"`
	Announcements  int      `json:"announcements"`
	Error          string   `json:"error"`
}

// crawlOf runs `peernode crawl --json` with args on dataDir and checks the
// answer's shape.
func crawlOf(t *testing.T, dataDir string, args ...string) crawlJSON {
	t.Helper()
	r := peernode(t, append([]string{"crawl", "--json", "--data-dir", dataDir}, args...)...)
	var obj struct {
		Nodes []map[string]any `json:"nodes"`
	}
	decodeJSON(t, r, &obj)
	var raw map[string]any
	decodeJSON(t, r, &raw)
	requireKeys(t, raw, "nodes", "members", "dropped", "unvisited", "timed_out", "elapsed_ms")
	require.NotNil(t, obj.Nodes, "nodes must be a list: %s", r)
	for _, n := range obj.Nodes {
		requireKeys(t, n, "node_id", "depth", "via", "name", "addrs", "connected_count", "connected", "announcements")
	}
	var res crawlJSON
	decodeJSON(t, r, &res)
	for _, n := range res.Nodes {
		require.Equal(t, len(n.Connected), n.ConnectedCount, "%s", r)
		require.Equal(t, n.Depth == 0, n.Via == "", "only the start has no via: %s", r)
		for _, a := range n.Addrs {
			require.True(t, strings.HasSuffix(a, "/p2p/"+n.NodeID), "address %s of %s: %s", a, n.NodeID, r)
		}
	}
	return res
}

func (c crawlJSON) nodeIDs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.NodeID
	}
	return out
}

// Three daemons, beta and gamma bootstrapped from alpha: each lists the
// others with what the member table says, and a crawl from beta reaches
// all three.
func TestThreeDaemonsMembersAndCrawl(t *testing.T) {
	t.Parallel()
	// Announcing every 500ms, so beta hears of gamma (and gamma of beta)
	// through alpha within a second or two.
	fast := []string{"--announce-interval", "500ms", "--stale-after", "20s"}
	a := startDaemon(t, t.TempDir(), "alpha", fast...)
	b := startDaemon(t, t.TempDir(), "beta", append([]string{"--bootstrap", a.addr()}, fast...)...)
	c := startDaemon(t, t.TempDir(), "gamma", append([]string{"--bootstrap", a.addr()}, fast...)...)
	names := map[string]string{a.id: "alpha", b.id: "beta", c.id: "gamma"}

	// alpha holds a connection to both, verified, and has heard of both.
	connectedAndHeard := func(p peerJSON) bool {
		return p.Status == "verified" && p.Connected && p.LastHeard != ""
	}
	for _, d := range []*daemon{b, c} {
		p := waitPeer(t, a.dir, d.id, "verified, connected and heard of", connectedAndHeard)
		require.Equal(t, d.name, p.Name)
		heard, err := time.Parse(time.RFC3339, p.LastHeard)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), heard, waitTimeout, "last_heard of %s", d.name)
	}
	// beta lists gamma, connected or only a member it heard of through
	// alpha; likewise gamma lists beta.
	for _, pair := range [][2]*daemon{{b, c}, {c, b}} {
		p := waitPeer(t, pair[0].dir, pair[1].id, "heard of", func(p peerJSON) bool { return p.LastHeard != "" && p.Name != "" })
		require.Equal(t, pair[1].name, p.Name)
		require.NotEmpty(t, p.Addrs, "the member's announced addresses")
		if !p.Connected {
			require.NotEqual(t, "verified", p.Status, "a member without a connection: %v", p)
		}
		waitPeer(t, pair[0].dir, a.id, "connected", connectedAndHeard)
	}

	r := peernode(t, "peers", "--data-dir", a.dir)
	require.Equal(t, 0, r.code, "%s", r)
	for _, want := range []string{"CONNECTED", "LAST HEARD", "BLOBS", b.id, c.id} {
		require.Contains(t, r.stdout, want, "%s", r)
	}
	for line := range strings.Lines(r.stdout) {
		if strings.HasPrefix(line, b.id) || strings.HasPrefix(line, c.id) {
			require.Regexp(t, `verified\s+yes\s+`, line, "%s", r)
			require.Contains(t, line, " ago ", "%s", r)
		}
	}

	// The crawl from beta reaches alpha and, through alpha (or directly),
	// gamma. Each node answered, and named itself.
	var res crawlJSON
	waitUntil(t, waitTimeout, func() (bool, string) {
		res = crawlOf(t, b.dir, "--depth", "-1")
		got := res.nodeIDs()
		ok := len(got) == 3 && slices.Contains(got, a.id) && slices.Contains(got, b.id) && slices.Contains(got, c.id) &&
			!slices.ContainsFunc(res.Nodes, func(n crawledJSON) bool { return n.Error != "" || n.Name == "" })
		return ok, fmt.Sprintf("crawl from beta: want alpha %s, beta %s and gamma %s, all answering; got %+v", a.id, b.id, c.id, res)
	})
	require.Equal(t, b.id, res.Nodes[0].NodeID, "the crawl starts at the daemon")
	for _, n := range res.Nodes {
		require.Equal(t, names[n.NodeID], n.Name)
		require.NotEmpty(t, n.Addrs, "%s announced its addresses", n.Name)
		require.NotZero(t, n.ConnectedCount, "%s is connected to someone", n.Name)
	}
	require.False(t, res.TimedOut)
	require.Zero(t, res.Dropped)
	require.Zero(t, res.Unvisited, "every node seen was asked")
	require.GreaterOrEqual(t, res.Members, 3)
	require.Positive(t, res.ElapsedMs)

	// Depth 0 asks only the daemon; the others are seen, not asked.
	res = crawlOf(t, b.dir, "--depth", "0", "--timeout", "10s")
	require.Equal(t, []string{b.id}, res.nodeIDs())
	require.Positive(t, res.Unvisited)

	r = peernode(t, "crawl", "--data-dir", a.dir, "--max-peers", "10")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^DEPTH\s+NODE ID\s+NAME\s+CONNECTED\s+ERROR$`, r.stdout, "%s", r)
	require.Regexp(t, `(?m)^0\s+`+a.id+`\s+alpha\s+2\s+-$`, r.stdout, "%s", r)
	require.Contains(t, r.stdout, "3 nodes asked, ", "%s", r)
	require.Contains(t, r.stdout, "timed out: no", "%s", r)
}
