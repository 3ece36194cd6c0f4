package discovery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

// graph is a network for the crawler: who is connected to whom, each node
// answering with its neighbours and their signed announcements and its own.
type graph struct {
	t      testing.TB
	nodes  []testNode
	edges  map[peer.ID][]peer.ID
	stall  map[peer.ID]bool // never answers (until the context ends)
	fail   map[peer.ID]bool // answers with an error
	asked  sync.Map         // peer.ID -> *atomic.Int32
	active atomic.Int32
	peak   atomic.Int32
}

func newGraph(t testing.TB, n int) *graph {
	g := &graph{t: t, edges: map[peer.ID][]peer.ID{}, stall: map[peer.ID]bool{}, fail: map[peer.ID]bool{}}
	for range n {
		g.nodes = append(g.nodes, newTestNode(t))
	}
	return g
}

func (g *graph) id(i int) peer.ID { return g.nodes[i].id }

func (g *graph) link(i, j int) {
	g.edges[g.id(i)] = append(g.edges[g.id(i)], g.id(j))
	g.edges[g.id(j)] = append(g.edges[g.id(j)], g.id(i))
}

func (g *graph) fetch(ctx context.Context, id peer.ID) (Peers, error) {
	c, _ := g.asked.LoadOrStore(id, new(atomic.Int32))
	c.(*atomic.Int32).Add(1)
	if a := g.active.Add(1); a > g.peak.Load() {
		g.peak.Store(a)
	}
	defer g.active.Add(-1)
	if g.stall[id] {
		<-ctx.Done()
		return Peers{}, ctx.Err()
	}
	if g.fail[id] {
		return Peers{}, fmt.Errorf("%s: unreachable", id)
	}
	var signed [][]byte
	known := false
	for _, n := range g.nodes {
		if n.id == id {
			known = true
			signed = append(signed, n.signed(g.t, n.ann(1)))
		}
		for _, nb := range g.edges[id] {
			if n.id == nb {
				signed = append(signed, n.signed(g.t, n.ann(1)))
			}
		}
	}
	if !known {
		return Peers{}, fmt.Errorf("unknown node %s", id)
	}
	return DecodePeers(frameBody(EncodePeers(signed, g.edges[id])))
}

func (g *graph) crawl(t *testing.T, cfg CrawlConfig) CrawlResult {
	t.Helper()
	res, err := Crawl(context.Background(), g.id(0), g.fetch, cfg)
	require.NoError(t, err)
	return res
}

func depths(res CrawlResult) map[peer.ID]int {
	out := map[peer.ID]int{}
	for _, n := range res.Nodes {
		out[n.NodeID] = n.Depth
	}
	return out
}

func crawlConfig(depth int) CrawlConfig {
	c := DefaultCrawlConfig()
	c.Depth = depth
	c.Timeout = 10 * time.Second
	return c
}

func TestCrawlDepthOnALine(t *testing.T) {
	g := newGraph(t, 5)
	for i := range 4 {
		g.link(i, i+1)
	}
	for depth, want := range map[int]int{0: 1, 1: 2, 2: 3, 3: 4, 4: 5, -1: 5, 9: 5} {
		res := g.crawl(t, crawlConfig(depth))
		require.Len(t, res.Nodes, want, "depth %d", depth)
		for i, n := range res.Nodes {
			require.Equal(t, g.id(i), n.NodeID, "breadth first along the line")
			require.Equal(t, i, n.Depth)
			require.Empty(t, n.Err)
			require.NotNil(t, n.Announcement)
			require.Equal(t, g.id(i), n.Announcement.NodeID)
			if i > 0 {
				require.Equal(t, g.id(i-1), n.Via)
			}
		}
		wantUnvisited := 0
		if want < 5 {
			wantUnvisited = 1 // the next node along the line was seen, not asked
		}
		require.Equal(t, wantUnvisited, res.Unvisited, "depth %d", depth)
		require.False(t, res.TimedOut)
	}
}

func TestCrawlCycleAndMaxPeers(t *testing.T) {
	g := newGraph(t, 12)
	for i := range 12 {
		g.link(i, (i+1)%12) // a ring
		g.link(i, (i+5)%12) // and chords
	}
	res := g.crawl(t, crawlConfig(-1))
	require.Len(t, res.Nodes, 12)
	require.Equal(t, 12, res.Members)
	g.asked.Range(func(k, v any) bool {
		require.EqualValues(t, 1, v.(*atomic.Int32).Load(), "%s asked once", k)
		return true
	})
	d := depths(res)
	require.Equal(t, 0, d[g.id(0)])
	require.Equal(t, 1, d[g.id(1)])
	require.Equal(t, 1, d[g.id(11)])
	require.Equal(t, 1, d[g.id(5)])
	require.Equal(t, 2, d[g.id(2)], "shortest distance")

	cfg := crawlConfig(-1)
	cfg.MaxPeers = 4
	res = g.crawl(t, cfg)
	require.Len(t, res.Nodes, 4)
	require.Positive(t, res.Unvisited)
}

func TestCrawlTimeoutReturnsPartialResults(t *testing.T) {
	g := newGraph(t, 5)
	for i := range 4 {
		g.link(i, i+1)
	}
	g.link(1, 4)
	g.stall[g.id(2)] = true // answers never
	cfg := crawlConfig(-1)
	cfg.Timeout = 200 * time.Millisecond
	res := g.crawl(t, cfg)
	require.True(t, res.TimedOut)
	got := map[peer.ID]CrawledNode{}
	for _, n := range res.Nodes {
		got[n.NodeID] = n
	}
	require.Empty(t, got[g.id(0)].Err)
	require.Empty(t, got[g.id(1)].Err)
	require.Empty(t, got[g.id(4)].Err, "a node of the same level as the stalled one answered")
	require.Equal(t, "crawl timed out", got[g.id(2)].Err)
	_, asked3 := got[g.id(3)]
	require.False(t, asked3, "the level after the timeout is not asked")
}

func TestCrawlFailuresAndConcurrency(t *testing.T) {
	g := newGraph(t, 30)
	for i := 1; i < 30; i++ {
		g.link(0, i) // a star: 29 nodes in one level
	}
	g.fail[g.id(7)] = true
	cfg := crawlConfig(-1)
	cfg.Concurrency = 3
	res := g.crawl(t, cfg)
	require.Len(t, res.Nodes, 30)
	require.LessOrEqual(t, g.peak.Load(), int32(3))
	for _, n := range res.Nodes {
		if n.NodeID == g.id(7) {
			require.Contains(t, n.Err, "unreachable")
			require.NotNil(t, n.Announcement, "its announcement came from the centre's answer")
		} else {
			require.Empty(t, n.Err)
		}
	}
}

func TestCrawlConfigValidate(t *testing.T) {
	require.NoError(t, DefaultCrawlConfig().Validate())
	for _, c := range []CrawlConfig{
		{Depth: -2, MaxPeers: 1, Timeout: time.Second, Concurrency: 1},
		{Depth: 0, MaxPeers: 0, Timeout: time.Second, Concurrency: 1},
		{Depth: 0, MaxPeers: 1, Timeout: 0, Concurrency: 1},
		{Depth: 0, MaxPeers: 1, Timeout: time.Second, Concurrency: 0},
	} {
		_, err := Crawl(context.Background(), "x", nil, c)
		require.Error(t, err, "%+v", c)
	}
}

// A node in Skip (the crawling node, connected to everyone) is neither
// asked nor a shortcut: the walk keeps the line's depths.
func TestCrawlSkipsTheCrawler(t *testing.T) {
	g := newGraph(t, 6)
	for i := range 4 {
		g.link(i, i+1)
	}
	for i := range 5 {
		g.link(5, i) // node 5 crawls and is linked to all
	}
	cfg := crawlConfig(-1)
	cfg.Skip = []peer.ID{g.id(5)}
	res := g.crawl(t, cfg)
	require.Len(t, res.Nodes, 5)
	for i, n := range res.Nodes {
		require.Equal(t, g.id(i), n.NodeID)
		require.Equal(t, i, n.Depth)
	}
	require.Zero(t, res.Unvisited)
	_, asked := g.asked.Load(g.id(5))
	require.False(t, asked)
}
