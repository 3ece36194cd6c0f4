package test

import (
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/node"
	"peernode/protocols/handshake"
)

// Verified peers are pinged and scored; each explanation adds up to its
// score; the best connection is protected from the connection manager and
// every verified one tagged with its score.
func TestNodesScoreAndProtectTheBest(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 4, func(c *node.Config) { c.ProtectBest = 1 })
	hub := nodes[0]
	for _, n := range nodes[1:] {
		WaitVerified(t, hub, n.ID())
	}
	// Every peer gets RTT samples from the ping rounds.
	require.Eventually(t, func() bool {
		for _, n := range nodes[1:] {
			if hub.Score(n.ID()).Components[0].Samples < 2 {
				return false
			}
		}
		return true
	}, WaitTimeout, 20*time.Millisecond, "the ping rounds never sampled every peer")
	for _, n := range nodes[1:] {
		e := hub.Score(n.ID())
		sum := 0.0
		for _, c := range e.Components {
			sum += c.Contribution
			require.GreaterOrEqual(t, c.Value, 0.0)
			require.LessOrEqual(t, c.Value, 1.0)
		}
		require.InDelta(t, e.Score, sum, 1e-9)
		require.Positive(t, e.SmoothedRTT)
	}

	// Exactly one peer is protected, and it is the best ranked at the time.
	cm := hub.Host().ConnManager()
	ids := []peer.ID{nodes[1].ID(), nodes[2].ID(), nodes[3].ID()}
	require.Eventually(t, func() bool {
		protected := 0
		for _, p := range ids {
			if cm.IsProtected(p, "peernode-best") {
				protected++
			}
		}
		info := cm.GetTagInfo(ids[0])
		return protected == 1 && info != nil && info.Tags["peernode-score"] > 0
	}, WaitTimeout, 20*time.Millisecond, "not exactly one protected peer, or no score tag")
}

// Scores are saved with the member table and restored on start.
func TestScoresSurviveARestart(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 2, nil)
	a, b := nodes[0], nodes[1]
	WaitVerified(t, a, b.ID())
	require.Eventually(t, func() bool { return a.Score(b.ID()).Components[1].Samples >= 3 }, WaitTimeout, 20*time.Millisecond)
	cfg := a.Config()
	require.NoError(t, a.Close())
	// Keep b away so the restarted node's scores are only what it saved.
	require.NoError(t, b.Close())
	before := a.Score(b.ID())

	again := StartNode(t, cfg)
	after := again.Score(b.ID())
	require.Equal(t, before.Components[0].Samples, after.Components[0].Samples, "RTT samples")
	require.Equal(t, before.Components[1].Samples, after.Components[1].Samples, "requests")
	require.InDelta(t, before.SmoothedRTT.Seconds(), after.SmoothedRTT.Seconds(), 1e-9)
	require.Less(t, math.Abs(before.Reliability-after.Reliability), 0.01)
}

// BestPeers ranks verified peers and filters by role.
func TestBestPeersByRole(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 4, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		if i == 3 {
			cfg.Role = handshake.RoleClient
		}
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	hub := nodes[0]
	for _, n := range nodes[1:] {
		WaitVerified(t, hub, n.ID())
	}
	require.Equal(t, []peer.ID{nodes[3].ID()}, hub.BestPeers(3, handshake.RoleClient))
	full := hub.BestPeers(3, handshake.RoleFull)
	require.ElementsMatch(t, []peer.ID{nodes[1].ID(), nodes[2].ID()}, full)
	require.Len(t, hub.BestPeers(1, ""), 1)
}
