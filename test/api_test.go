package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peernode/api"
	"peernode/discovery"
	"peernode/node"
	"peernode/protocols/handshake"
)

// The control API of a real node, found the way the CLI finds it: through
// the data directory.
func TestAPIOfRunningNode(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	c, err := api.ClientForDataDir(a.Config().DataDir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()

	id, err := c.ID(ctx)
	require.NoError(t, err)
	require.Equal(t, a.ID().String(), id.NodeID)
	require.Equal(t, a.Config().Network.ID, id.NetworkID)
	require.Equal(t, node.Version, id.Version)
	require.NotEmpty(t, id.Addrs)
	for _, addr := range id.Addrs {
		require.Regexp(t, "/p2p/"+id.NodeID+"$", addr)
	}

	peers, err := c.Peers(ctx)
	require.NoError(t, err)
	require.Empty(t, peers)

	res, err := c.Connect(ctx, b.Addrs()[0].String())
	require.NoError(t, err)
	require.Equal(t, b.ID().String(), res.NodeID)
	peers, err = c.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, peers, 1)
	require.Equal(t, b.ID().String(), peers[0].NodeID)
	require.Equal(t, "outbound", peers[0].Direction)
	require.False(t, peers[0].ConnectedSince.IsZero())

	_, err = c.Connect(ctx, "/ip4/127.0.0.1/tcp/1")
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)

	// Without the right token: 401, and nothing on disk changes.
	before := dirState(t, a.Config().DataDir)
	_, err = api.NewClient(a.APIAddr(), "not-the-token").Peers(ctx)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
	require.Equal(t, before, dirState(t, a.Config().DataDir))

	// Close removes the address file: the CLI then reports no daemon.
	require.NoError(t, a.Close())
	_, err = api.ClientForDataDir(a.Config().DataDir)
	require.ErrorIs(t, err, api.ErrNoDaemon)
}

// dirState maps each file of dir, and of its subdirectories, to its
// content.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			for name, content := range dirState(t, filepath.Join(dir, e.Name())) {
				out[filepath.Join(e.Name(), name)] = content
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// /metrics serves the handshake counters, behind the API token like every
// other route.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		if i == 1 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	WaitVerified(t, nodes[1], nodes[0].ID())
	WaitVerified(t, nodes[0], nodes[1].ID())
	dir := nodes[0].Config().DataDir
	tok, err := api.ReadToken(dir)
	require.NoError(t, err)
	get := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+nodes[0].APIAddr()+"/metrics", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get(tok)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `peernode_handshake_results_total{direction="inbound",reason="none",result="verified"}`)
	require.Contains(t, body, `peernode_handshake_duration_seconds_bucket`)
}

// The member table and the crawl through the API of real nodes, on a line
// left - hub - right: left and right allow only the hub, so they never
// stay connected, and each knows the other from the hub's gossip. Left
// also remembers a ghost from a saved table: a member the registry never
// met, since no dial reaches it.
func TestAPIMembersAndCrawl(t *testing.T) {
	t.Parallel()
	ghost := saveGhostMember(t)
	nodes := StartNodes(t, 3, func(i int, cfg *node.Config, _ []*node.Node) {
		cfg.Trust = handshake.PolicyAllowlist
		if i == 1 {
			// The ghost stays in the table StaleAfter from the start.
			cfg.StaleAfter = time.Minute
			ghost.saveIn(t, cfg.DataDir)
		}
	})
	hub, left, right := nodes[0], nodes[1], nodes[2]
	for _, pair := range [][2]*node.Node{{hub, left}, {hub, right}, {left, hub}, {right, hub}} {
		_, err := pair[0].Allow(pair[1].ID(), "test line")
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*WaitTimeout)
	defer cancel()
	for _, n := range []*node.Node{left, right} {
		require.NoError(t, n.Connect(ctx, AddrInfo(hub)))
		WaitVerified(t, n, hub.ID())
		WaitVerified(t, hub, n.ID())
	}
	client := func(n *node.Node) *api.Client {
		c, err := api.ClientForDataDir(n.Config().DataDir)
		require.NoError(t, err)
		return c
	}
	hubAPI, leftAPI := client(hub), client(left)
	find := func(ms []api.Member, id peer.ID) (api.Member, bool) {
		i := slices.IndexFunc(ms, func(m api.Member) bool { return m.NodeID == id.String() })
		if i < 0 {
			return api.Member{}, false
		}
		return ms[i], true
	}

	// The hub: both ends verified, connected, announced (seq set).
	var ms []api.Member
	require.Eventually(t, func() bool {
		var err error
		ms, err = hubAPI.Members(ctx)
		require.NoError(t, err)
		l, lok := find(ms, left.ID())
		r, rok := find(ms, right.ID())
		return lok && rok && l.Seq > 0 && r.Seq > 0
	}, WaitTimeout, 20*time.Millisecond, "the hub never heard both ends announce")
	require.True(t, slices.IsSortedFunc(ms, func(a, b api.Member) int { return strings.Compare(a.NodeID, b.NodeID) }), "sorted by node ID")
	for _, n := range []*node.Node{left, right} {
		m, _ := find(ms, n.ID())
		require.Equal(t, n.Config().Name, m.Name)
		require.Equal(t, string(n.Config().Role), m.Role)
		require.Equal(t, node.Version, m.Version)
		require.NotEmpty(t, m.Addrs)
		for _, a := range m.Addrs {
			require.True(t, strings.HasSuffix(a, "/p2p/"+m.NodeID), "address %s", a)
		}
		require.Contains(t, []string{"gossip", "registry", "exchange"}, m.Source)
		require.True(t, m.Connected)
		require.Equal(t, api.PeerStatusVerified, m.Status)
		require.False(t, m.FirstHeard.After(m.LastHeard))
		require.WithinDuration(t, time.Now(), m.LastHeard, WaitTimeout)
		require.Equal(t, time.UTC, m.LastHeard.Location())
	}

	// Left: right is a member it holds no connection to, so /v1/members
	// says so, and /v1/peers lists it with what the member table says.
	require.Eventually(t, func() bool {
		ms, err := leftAPI.Members(ctx)
		require.NoError(t, err)
		m, ok := find(ms, right.ID())
		return ok && m.Seq > 0 && !m.Connected
	}, WaitTimeout, 20*time.Millisecond, "left never heard of right through the hub")
	ms, err := leftAPI.Members(ctx)
	require.NoError(t, err)
	m, _ := find(ms, right.ID())
	require.NotEqual(t, api.PeerStatusVerified, m.Status)
	require.Equal(t, right.Config().Name, m.Name)
	g, ok := find(ms, ghost.id)
	require.True(t, ok, "the saved ghost: %+v", ms)
	require.Equal(t, "saved", g.Source)
	require.Equal(t, api.MemberStatusUnknown, g.Status, "the registry never met it")
	require.False(t, g.Connected)
	require.Equal(t, "ghost", g.Name)
	require.Equal(t, []string{ghost.addr + "/p2p/" + ghost.id.String()}, g.Addrs)
	require.WithinDuration(t, ghost.heard, g.LastHeard, time.Second)

	var peers []api.PeerInfo
	byID := func(id peer.ID) (api.PeerInfo, bool) {
		i := slices.IndexFunc(peers, func(p api.PeerInfo) bool { return p.NodeID == id.String() })
		if i < 0 {
			return api.PeerInfo{}, false
		}
		return peers[i], true
	}
	require.Eventually(t, func() bool {
		var err error
		peers, err = leftAPI.Peers(ctx)
		require.NoError(t, err)
		r, ok := byID(right.ID())
		return len(peers) == 3 && ok && !r.Connected && !r.LastHeard.IsZero()
	}, WaitTimeout, 20*time.Millisecond, "left's peers lack hub, right or ghost")
	// Best score first (then verified first, then node ID): a slow hub
	// may rank below a member never sampled, which keeps the prior's score.
	sorted := slices.Clone(peers)
	api.SortPeers(sorted)
	require.Equal(t, sorted, peers, "sorted by score")
	h, ok := byID(hub.ID())
	require.True(t, ok)
	require.Equal(t, api.PeerStatusVerified, h.Status)
	require.True(t, h.Connected)
	require.False(t, h.LastHeard.IsZero())
	r, _ := byID(right.ID())
	require.NotEqual(t, api.PeerStatusVerified, r.Status)
	require.Equal(t, right.Config().Name, r.Name)
	gp, ok := byID(ghost.id)
	require.True(t, ok)
	require.Equal(t, api.PeerStatusDisconnected, gp.Status, "a member the registry does not know, not connected")
	require.False(t, gp.Connected)
	require.Empty(t, gp.Direction)
	require.True(t, gp.ConnectedSince.IsZero())
	require.Equal(t, "ghost", gp.Name)
	require.Equal(t, g.Addrs, gp.Addrs)
	require.Equal(t, g.LastHeard, gp.LastHeard)
	require.Zero(t, gp.BlobCount, "no announcement, no blobs")
	require.Nil(t, gp.LastFailure)

	// The crawl from the hub asks all three.
	name := func(id string) string {
		i := slices.IndexFunc(nodes, func(n *node.Node) bool { return n.ID().String() == id })
		require.GreaterOrEqual(t, i, 0, "crawled %s, not one of the nodes", id)
		return nodes[i].Config().Name
	}
	res, err := hubAPI.Crawl(ctx, api.DefaultCrawlRequest())
	require.NoError(t, err)
	require.False(t, res.TimedOut)
	require.Len(t, res.Nodes, 3, "%+v", res)
	require.Equal(t, hub.ID().String(), res.Nodes[0].NodeID)
	require.ElementsMatch(t, []string{left.ID().String(), right.ID().String()}, res.Nodes[0].Connected, "the hub's connections")
	for i, n := range res.Nodes {
		require.Equal(t, min(i, 1), n.Depth, "node %d", i)
		require.Empty(t, n.Error, "node %d", i)
		require.Equal(t, name(n.NodeID), n.Name)
		require.Equal(t, len(n.Connected), n.ConnectedCount)
		require.NotEmpty(t, n.Addrs)
	}
	require.Zero(t, res.Unvisited)
	require.GreaterOrEqual(t, res.Members, 3)

	// From left, the walk reaches right through the hub, but left may not
	// talk to right (allowlist): the node is listed with the reason.
	res, err = leftAPI.Crawl(ctx, api.DefaultCrawlRequest())
	require.NoError(t, err)
	require.Len(t, res.Nodes, 3, "%+v", res)
	for i, w := range []struct {
		id    peer.ID
		depth int
		via   string
	}{{left.ID(), 0, ""}, {hub.ID(), 1, left.ID().String()}, {right.ID(), 2, hub.ID().String()}} {
		n := res.Nodes[i]
		require.Equal(t, w.id.String(), n.NodeID, "node %d", i)
		require.Equal(t, w.depth, n.Depth, "node %d", i)
		require.Equal(t, w.via, n.Via, "node %d", i)
		require.Equal(t, name(n.NodeID), n.Name, "node %d: from its announcement", i)
	}
	require.Empty(t, res.Nodes[0].Error)
	require.Empty(t, res.Nodes[1].Error)
	require.NotEmpty(t, res.Nodes[2].Error, "left cannot ask right")
	require.Zero(t, res.Nodes[2].ConnectedCount)

	req := api.DefaultCrawlRequest()
	req.Depth = 1
	res, err = leftAPI.Crawl(ctx, req)
	require.NoError(t, err)
	require.Len(t, res.Nodes, 2)
	require.Equal(t, 1, res.Unvisited, "right was seen, not asked")

	req.Depth = -2
	_, err = leftAPI.Crawl(ctx, req)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)
	require.Contains(t, se.Message, "depth=-2")
}

// The API's crawl defaults are the discovery package's.
func TestAPICrawlDefaults(t *testing.T) {
	d := discovery.DefaultCrawlConfig()
	require.Equal(t, api.CrawlRequest{Depth: d.Depth, MaxPeers: d.MaxPeers, Timeout: d.Timeout}, api.DefaultCrawlRequest())
	require.NoError(t, d.Validate())
}

// ghostMember is a member no node can reach: its address refuses
// connections.
type ghostMember struct {
	id    peer.ID
	addr  string
	heard time.Time
}

func saveGhostMember(t *testing.T) ghostMember {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	id, err := peer.IDFromPublicKey(pub)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return ghostMember{id: id, addr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), heard: time.Now()}
}

// saveIn writes a member table holding only the ghost where a node with
// dataDir loads it at start.
// It records when it was saved as heard (g.heard).
func (g *ghostMember) saveIn(t *testing.T, dataDir string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	tbl := discovery.NewTable(time.Minute, nil, nil)
	defer tbl.Close()
	g.heard = time.Now()
	tbl.Verified(g.id, "ghost", "full", []ma.Multiaddr{ma.StringCast(g.addr)})
	require.NoError(t, tbl.Save(filepath.Join(dataDir, "members.json")))
}

// Scores and pings through the API of real nodes: a peer's score is
// explained and adds up; a member only the saved table knows still has
// the priors' score; a node no one knows is 404, this node 400; pinging a
// verified peer measures RTTs, pinging the unreachable member fails with
// 502 within the ping's bound.
func TestAPIScoresAndPing(t *testing.T) {
	t.Parallel()
	ghost := saveGhostMember(t)
	nodes := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		switch i {
		case 0:
			ghost.saveIn(t, cfg.DataDir)
		case 1:
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	a, b := nodes[0], nodes[1]
	WaitVerified(t, a, b.ID())
	c, err := api.ClientForDataDir(a.Config().DataDir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()

	// The handshake's RTT reaches scoring from the node's event loop,
	// just after the registry says Verified: wait for it.
	var peers []api.PeerInfo
	require.Eventually(t, func() bool {
		peers, err = c.Peers(ctx)
		require.NoError(t, err)
		for _, p := range peers {
			if p.NodeID == b.ID().String() {
				return p.RTTMillis != nil
			}
		}
		return false
	}, WaitTimeout, 10*time.Millisecond, "the handshake's RTT is a sample")
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.NodeID
		require.True(t, p.Score >= 0 && p.Score <= 1, "%+v", p)
		require.True(t, p.Reliability >= 0 && p.Reliability <= 1, "%+v", p)
		if i > 0 {
			require.LessOrEqual(t, p.Score, peers[i-1].Score, "best score first: %+v", peers)
		}
		switch p.NodeID {
		case b.ID().String():
			require.NotNil(t, p.RTTMillis, "the handshake's RTT is a sample")
			require.Positive(t, *p.RTTMillis)
		case ghost.id.String():
			require.Nil(t, p.RTTMillis, "never reached, no RTT")
		}
	}
	require.ElementsMatch(t, []string{b.ID().String(), ghost.id.String()}, ids)

	e, err := c.Score(ctx, b.ID().String())
	require.NoError(t, err)
	require.True(t, e.HasSamples())
	sum := 0.0
	for _, comp := range e.Components {
		sum += comp.Contribution
	}
	require.InDelta(t, e.Score, sum, 1e-9)
	require.Equal(t, b.ID().String(), e.NodeID)

	e, err = c.Score(ctx, ghost.id.String())
	require.NoError(t, err, "a member is known, samples or not")
	require.Equal(t, ghost.id.String(), e.NodeID)

	_, stranger, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	strangerID, err := peer.IDFromPublicKey(stranger)
	require.NoError(t, err)
	var se *api.StatusError
	_, err = c.Score(ctx, strangerID.String())
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code, "%v", err)
	_, err = c.Score(ctx, a.ID().String())
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code, "%v", err)

	res, err := c.Ping(ctx, b.ID().String(), 2)
	require.NoError(t, err)
	require.Len(t, res.RTTsMillis, 2)
	for _, ms := range res.RTTsMillis {
		require.Positive(t, ms)
	}
	require.Empty(t, res.Error)

	_, err = c.Ping(ctx, a.ID().String(), 1)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code, "%v", err)

	start := time.Now()
	res, err = c.Ping(ctx, ghost.id.String(), 2)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadGateway, se.Code, "%v", err)
	require.Empty(t, res.RTTsMillis)
	require.NotEmpty(t, res.Error)
	bound := 2*a.PingTimeout() + a.Config().DialTimeout
	require.Less(t, time.Since(start), bound+5*time.Second, "the daemon bounds the pings")
}
