package test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/discovery"
	"peernode/node"
	"peernode/protocols/handshake"
)

// startLine starts a crawler and a line of count nodes, line[0] - line[1] -
// ... Each line node allows only its neighbours and the crawler, so no
// other link can form (the DHT and the rendezvous try); the crawler, open,
// may connect to anyone, and is skipped by the walk.
func startLine(t *testing.T, count int) (crawler *node.Node, line []*node.Node) {
	t.Helper()
	ccfg := Config(t, "crawler")
	ccfg.APIAddr = ""
	crawler = StartNode(t, ccfg)
	for i := range count {
		cfg := Config(t, "line"+string(rune('0'+i)))
		cfg.APIAddr = ""
		cfg.Trust = handshake.PolicyAllowlist
		cfg.ConnMgrLow = 1
		line = append(line, StartNode(t, cfg))
	}
	for i, n := range line {
		allow(t, n, crawler)
		if i > 0 {
			allow(t, n, line[i-1])
		}
		if i+1 < count {
			allow(t, n, line[i+1])
		}
	}
	for i := 1; i < count; i++ {
		link(t, line[i-1], line[i])
	}
	link(t, crawler, line[0])
	return crawler, line
}

func allow(t *testing.T, n, p *node.Node) {
	t.Helper()
	_, err := n.Allow(p.ID(), "test topology")
	require.NoError(t, err)
}

func link(t *testing.T, a, b *node.Node) {
	t.Helper()
	connect(t, a, b)
	WaitVerified(t, a, b.ID())
	WaitVerified(t, b, a.ID())
}

func crawl(t *testing.T, crawler, start *node.Node, depth, maxPeers int, timeout time.Duration) discovery.CrawlResult {
	t.Helper()
	cfg := discovery.DefaultCrawlConfig()
	cfg.Depth, cfg.Timeout = depth, timeout
	if maxPeers > 0 {
		cfg.MaxPeers = maxPeers
	}
	res, err := crawler.CrawlFrom(context.Background(), start.ID(), cfg)
	require.NoError(t, err)
	return res
}

func ids(ns []*node.Node) []peer.ID {
	out := make([]peer.ID, len(ns))
	for i, n := range ns {
		out[i] = n.ID()
	}
	return out
}

func crawledIDs(res discovery.CrawlResult) []peer.ID {
	out := make([]peer.ID, len(res.Nodes))
	for i, n := range res.Nodes {
		out[i] = n.NodeID
	}
	return out
}

// Crawl on a line of five real nodes: depth 0, 1, 2 and -1 reach one, two,
// three and five nodes, each at its distance; max-peers caps; closing the
// line into a ring still ends, each node asked once; a stalled node makes
// the timeout return what was learnt.
func TestCrawlLineOfFive(t *testing.T) {
	t.Parallel()
	crawler, line := startLine(t, 5)
	// Gossip crosses the line, so every answer carries every member's
	// announcement: a node not asked is still seen (Unvisited).
	for _, a := range line {
		for _, b := range line {
			if a != b {
				waitMember(t, a, b.ID())
			}
		}
	}
	for _, tc := range []struct{ depth, want int }{{0, 1}, {1, 2}, {2, 3}, {-1, 5}} {
		res := crawl(t, crawler, line[0], tc.depth, 0, WaitTimeout)
		require.Equal(t, ids(line[:tc.want]), crawledIDs(res), "depth %d", tc.depth)
		for i, n := range res.Nodes {
			require.Empty(t, n.Err, "depth %d, node %d", tc.depth, i)
			require.Equal(t, i, n.Depth)
			require.NotNil(t, n.Announcement, "node %d's own announcement", i)
			require.Equal(t, line[i].Config().Name, n.Announcement.Name)
		}
		require.False(t, res.TimedOut)
		require.Equal(t, 5-tc.want, res.Unvisited, "depth %d: the nodes beyond were seen, not asked", tc.depth)
		require.GreaterOrEqual(t, res.Members, 5)
	}

	res := crawl(t, crawler, line[0], -1, 3, WaitTimeout)
	require.Equal(t, ids(line[:3]), crawledIDs(res))
	require.Equal(t, 2, res.Unvisited)

	// Close the ring: the walk meets line[4] from both sides and asks it once.
	allow(t, line[0], line[4])
	allow(t, line[4], line[0])
	link(t, line[4], line[0])
	res = crawl(t, crawler, line[0], -1, 0, WaitTimeout)
	require.Len(t, res.Nodes, 5)
	require.ElementsMatch(t, ids(line), crawledIDs(res))
	got := map[peer.ID]int{}
	for _, n := range res.Nodes {
		got[n.NodeID] = n.Depth
	}
	require.Equal(t, map[peer.ID]int{line[0].ID(): 0, line[1].ID(): 1, line[4].ID(): 1, line[2].ID(): 2, line[3].ID(): 2}, got)

	// line[2] stops answering: the crawl returns at its timeout with what
	// the others said.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	line[2].Handle(discovery.PeersProtocol, func(s network.Stream) {
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		_ = s.Reset()
	})
	began := time.Now()
	res = crawl(t, crawler, line[0], -1, 0, 1500*time.Millisecond)
	require.True(t, res.TimedOut)
	require.Less(t, time.Since(began), WaitTimeout, "the crawl outlived its timeout")
	byID := map[peer.ID]discovery.CrawledNode{}
	for _, n := range res.Nodes {
		byID[n.NodeID] = n
	}
	require.Equal(t, "crawl timed out", byID[line[2].ID()].Err)
	for _, i := range []int{0, 1, 4} {
		require.Empty(t, byID[line[i].ID()].Err, "node %d answered before the timeout", i)
	}
}

// A peer's answer is verifiable: each announcement a node serves checks out
// against its own node's key (none dropped), the node's own comes first,
// and the answer lists the members it is connected to.
func TestPeerExchangeFillsTable(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 3, nil)
	waitMember(t, nodes[0], nodes[2].ID())
	asker := StartNode(t, func() node.Config { c := Config(t, "asker"); c.APIAddr = ""; return c }())
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, asker.Connect(ctx, AddrInfo(nodes[0])))
	got, err := asker.ExchangePeers(ctx, nodes[0].ID())
	require.NoError(t, err)
	require.Zero(t, got.Dropped)
	require.Equal(t, nodes[0].ID(), got.Announcements[0].NodeID, "the node's own announcement comes first")
	have := map[peer.ID]bool{}
	for _, a := range got.Announcements {
		have[a.NodeID] = true
	}
	require.True(t, have[nodes[1].ID()] && have[nodes[2].ID()], "the answer holds the other members")
	require.Contains(t, got.Connected, nodes[1].ID())
	require.Contains(t, got.Connected, asker.ID())
}
