package test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/discovery"
	"peernode/node"
	"peernode/protocols/handshake"
)

// waitMember waits until n's member table holds p with a signed
// announcement (so it came from p itself, through gossip or exchange).
func waitMember(t *testing.T, n *node.Node, p peer.ID) discovery.Member {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		for _, m := range n.Members() {
			if m.NodeID == p && m.Signed != nil {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never received a signed announcement of %s (table: %d members)", n.Config().Name, p, len(n.Members()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasMember(n *node.Node, p peer.ID) bool {
	for _, m := range n.Members() {
		if m.NodeID == p {
			return true
		}
	}
	return false
}

func startStar(t *testing.T, count int, change func(*node.Config)) []*node.Node {
	return StartNodes(t, count, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		if change != nil {
			change(cfg)
		}
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
}

// Every member's table fills with everyone's signed announcements.
func TestAnnouncementsFillTables(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 4, nil)
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				m := waitMember(t, a, b.ID())
				require.Equal(t, b.Config().Name, m.Announcement.Name)
				require.NotEmpty(t, m.Announcement.Addrs)
			}
		}
	}
}

// A bare host that connects to a member and joins the topic without being
// verified receives no announcement, and no gossip about any.
func TestUnverifiedHostGetsNoAnnouncement(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 3, nil)
	nw := nodes[0].Config().Network
	h := NewHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rpcs []*pubsub.RPC
	rec := &rpcRecorder{out: &rpcs}
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithRawTracer(rec))
	require.NoError(t, err)
	topic, err := ps.Join(discovery.Topic(nw.ID))
	require.NoError(t, err)
	sub, err := topic.Subscribe()
	require.NoError(t, err)
	defer sub.Cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(nodes[1])))

	// Let the members exchange a good number of announcements meanwhile.
	waitMember(t, nodes[1], nodes[2].ID())
	seq := func() uint64 { m, _ := discoveryMember(nodes[1], nodes[2].ID()); return m.Announcement.Seq }
	start := seq()
	require.Eventually(t, func() bool { return seq() >= start+5 }, WaitTimeout, 10*time.Millisecond)

	got, err := func() (*pubsub.Message, error) {
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		return sub.Next(c)
	}()
	require.Error(t, err, "an unverified host received %v", got)
	require.Zero(t, rec.count(), "an unverified host received pubsub RPCs (messages or gossip)")
}

func discoveryMember(n *node.Node, p peer.ID) (discovery.Member, bool) {
	for _, m := range n.Members() {
		if m.NodeID == p {
			return m, true
		}
	}
	return discovery.Member{}, false
}

// A node that dies without a word is pruned by the others once StaleAfter
// passes; one that shuts down cleanly is removed at once; live members stay.
func TestStalePruningAndLeaving(t *testing.T) {
	t.Parallel()
	// StaleAfter is fifteen announce intervals: a live member under the
	// -race suite's load must not miss them all.
	const stale = 1500 * time.Millisecond
	nodes := startStar(t, 4, func(c *node.Config) { c.StaleAfter = stale })
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitMember(t, a, b.ID())
			}
		}
	}
	crashed, leaving, survivors := nodes[3], nodes[2], nodes[:2]
	// A live member pruned and heard again would come back with a new
	// FirstHeard.
	first := [2]time.Time{waitMember(t, survivors[0], survivors[1].ID()).FirstHeard, waitMember(t, survivors[1], survivors[0].ID()).FirstHeard}

	// Crash: the host goes away without announcing anything.
	require.NoError(t, crashed.Host().Close())
	t0 := time.Now()
	for _, s := range survivors {
		require.Eventually(t, func() bool { return !hasMember(s, crashed.ID()) }, WaitTimeout, 5*time.Millisecond)
	}
	elapsed := time.Since(t0)
	require.Less(t, elapsed, stale+time.Second, "pruned within StaleAfter + 1 s")

	// Clean shutdown: removed on its leaving announcement, before the
	// moment it would go stale. Each survivor's own deadline for it
	// (LastHeard + StaleAfter, the last one seen before it went) is what a
	// removal must beat: a survivor cannot prune earlier.
	// Both survivors hold a verified connection to the leaving node, both
	// ways, so each is told directly (LeaveProtocol), not only through the
	// topic.
	for _, s := range survivors {
		require.NoError(t, s.Host().Connect(context.Background(), AddrInfo(leaving)))
		WaitVerified(t, s, leaving.ID())
		WaitVerified(t, leaving, s.ID())
	}
	// Each survivor's deadline for the leaving node moves with every
	// announcement it hears, until the node stops announcing inside Close
	// (which may take a while on a loaded machine: it closes the API and
	// the ping rounds first). Follow it while Close runs: the removal must
	// come before the deadline as it stood when the node left.
	type watch struct {
		deadline, removed time.Time
	}
	watches := make([]chan watch, len(survivors))
	for i, s := range survivors {
		watches[i] = make(chan watch, 1)
		first := waitMember(t, s, leaving.ID()).LastHeard.Add(stale)
		go func() {
			w := watch{deadline: first}
			for limit := time.Now().Add(WaitTimeout); time.Now().Before(limit); time.Sleep(2 * time.Millisecond) {
				m, ok := discoveryMember(s, leaving.ID())
				if !ok {
					w.removed = time.Now()
					break
				}
				w.deadline = m.LastHeard.Add(stale)
			}
			watches[i] <- w
		}()
	}
	require.NoError(t, leaving.Close())
	for _, ch := range watches {
		w := <-ch
		require.False(t, w.removed.IsZero(), "the leaving node was never removed")
		require.True(t, w.removed.Before(w.deadline),
			"a leaving node is removed at once, not when it goes stale (removed %v after its stale deadline)", w.removed.Sub(w.deadline))
	}

	// Nobody alive was pruned, not even for a moment.
	for i, s := range survivors {
		m, ok := discoveryMember(s, survivors[1-i].ID())
		require.True(t, ok, "a live member was pruned")
		require.True(t, first[i].Equal(m.FirstHeard), "a live member was pruned and heard again")
	}
}

// A restarted node finds its network from the saved member table, without
// any bootstrap address.
func TestRestartReconnectsFromTable(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 2, nil)
	seed, joiner := nodes[0], nodes[1]
	waitMember(t, joiner, seed.ID())
	cfg := joiner.Config()
	require.NoError(t, joiner.Close())
	cfg.Bootstrap = nil
	again := StartNode(t, cfg)
	WaitVerified(t, again, seed.ID())
}

// A member table that cannot be read is kept aside, not overwritten, and
// the node starts anyway.
func TestCorruptMemberTableKeptAside(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "corrupt")
	cfg.APIAddr = ""
	require.NoError(t, os.MkdirAll(cfg.DataDir, 0o700))
	garbage := []byte("{\"version\": 1, \"members\": [tru")
	require.NoError(t, os.WriteFile(filepath.Join(cfg.DataDir, "members.json"), garbage, 0o600))
	n := StartNode(t, cfg)
	require.NoError(t, n.Close())
	aside, err := filepath.Glob(filepath.Join(cfg.DataDir, "members.json.corrupt-*"))
	require.NoError(t, err)
	require.Len(t, aside, 1)
	b, err := os.ReadFile(aside[0])
	require.NoError(t, err)
	require.Equal(t, garbage, b)
}

// Ten nodes bootstrapped from one: every table holds the other nine; when
// the bootstrap node stops, the nine keep exchanging announcements.
func TestTenNodesKeepAnnouncingWithoutBootstrap(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 10, nil)
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitMember(t, a, b.ID())
			}
		}
	}
	require.NoError(t, nodes[0].Close())
	rest := nodes[1:]
	// Each survivor hears fresh announcements (a higher sequence number)
	// from every other survivor.
	before := map[[2]peer.ID]uint64{}
	for _, a := range rest {
		for _, b := range rest {
			if a != b {
				m, _ := discoveryMember(a, b.ID())
				before[[2]peer.ID{a.ID(), b.ID()}] = m.Announcement.Seq
			}
		}
	}
	for _, a := range rest {
		for _, b := range rest {
			if a == b {
				continue
			}
			key := [2]peer.ID{a.ID(), b.ID()}
			require.Eventually(t, func() bool {
				m, ok := discoveryMember(a, b.ID())
				return ok && m.Announcement.Seq > before[key]
			}, WaitTimeout, 10*time.Millisecond, "%s hears nothing new from %s", a.Config().Name, b.Config().Name)
		}
	}
}

// Two networks without pnet, deliberately connected: the handshake keeps
// them apart, and neither sees the other's announcements.
func TestNetworksDoNotSeeEachOthersAnnouncements(t *testing.T) {
	t.Parallel()
	red := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		*cfg = noPnetConfig(t, cfg.Name, "the red network's secret")
		cfg.APIAddr = ""
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	blue := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		*cfg = noPnetConfig(t, cfg.Name, "the blue network's secret")
		cfg.APIAddr = ""
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_ = blue[1].Connect(ctx, AddrInfo(red[1]))
	waitFailure(t, red[1], blue[1].ID(), "wrong_network")
	// Both networks carry on announcing among themselves...
	waitMember(t, red[0], red[1].ID())
	waitMember(t, blue[0], blue[1].ID())
	m, _ := discoveryMember(red[0], red[1].ID())
	require.Eventually(t, func() bool {
		now, _ := discoveryMember(red[0], red[1].ID())
		return now.Announcement.Seq > m.Announcement.Seq+3
	}, WaitTimeout, 10*time.Millisecond)
	// ...and neither holds a member of the other.
	for _, r := range red {
		for _, b := range blue {
			require.False(t, hasMember(r, b.ID()), "red knows blue")
			require.False(t, hasMember(b, r.ID()), "blue knows red")
		}
	}
}

// Announcements travel beyond one hop: in a line a - b - c whose ends refuse
// each other (allowlists), a's announcement reaches c through b, and c's
// reaches a.
func TestAnnouncementsTravelThroughAMember(t *testing.T) {
	t.Parallel()
	end := func(name string) *node.Node {
		cfg := Config(t, name)
		cfg.APIAddr = ""
		cfg.Trust = handshake.PolicyAllowlist
		return StartNode(t, cfg)
	}
	a, c := end("a"), end("c")
	bcfg := Config(t, "b")
	bcfg.APIAddr = ""
	b := StartNode(t, bcfg)
	for _, n := range []*node.Node{a, c} {
		_, err := n.Allow(b.ID(), "the middle of the line")
		require.NoError(t, err)
		connect(t, b, n)
		WaitVerified(t, n, b.ID())
	}
	// b's peer exchange may have told them first; the later announcements
	// can only come by gossip.
	for _, pair := range [][2]*node.Node{{a, c}, {c, a}} {
		require.Eventually(t, func() bool {
			m, ok := discoveryMember(pair[0], pair[1].ID())
			return ok && m.Source == discovery.SourceGossip
		}, WaitTimeout, 10*time.Millisecond, "%s never heard %s by gossip", pair[0].Config().Name, pair[1].Config().Name)
	}
	for _, pair := range [][2]*node.Node{{a, c}, {c, a}} {
		info, _ := pair[0].PeerInfo(pair[1].ID())
		require.NotEqual(t, node.StatusVerified, info.Status, "%s verified %s: the test needs them apart", pair[0].Config().Name, pair[1].Config().Name)
	}
}
