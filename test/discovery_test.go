package test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

// Six nodes all bootstrapped from node0 find each other through the DHT's
// rendezvous, not only node0: once node0 stops, the other five are still
// verified with each other (no star).
func TestRendezvousBeyondBootstrap(t *testing.T) {
	t.Parallel()
	const n = 6
	nodes := StartNodes(t, n, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	rest := nodes[1:]
	for _, a := range rest {
		for _, b := range rest {
			if a != b {
				WaitVerified(t, a, b.ID())
			}
		}
	}
	require.NoError(t, nodes[0].Close())
	for _, a := range rest {
		for _, b := range rest {
			if a != b {
				WaitVerified(t, a, b.ID())
			}
		}
	}
}

// Send by node ID to a node never connected and whose address is unknown:
// the DHT finds it.
func TestSendFindsAddressThroughDHT(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 3, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		cfg.ConnMgrLow = 1 // the rendezvous then dials no one beyond the bootstrap peer
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	a, c := nodes[1], nodes[2]
	got := make(chan struct{}, 1)
	c.Handle(echoProto, func(s network.Stream) { got <- struct{}{}; _ = s.Close() })
	WaitVerified(t, a, nodes[0].ID())
	WaitVerified(t, c, nodes[0].ID())
	// The DHT's own lookups may have taught a c's address, or linked them:
	// forget both, so only FindPeer can bring them together.
	_ = a.Host().Network().ClosePeer(c.ID())
	a.Host().Peerstore().ClearAddrs(c.ID())
	require.Empty(t, a.Host().Peerstore().Addrs(c.ID()))
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	var last error
	deadline := time.Now().Add(WaitTimeout)
	for last = a.Send(ctx, c.ID(), echoProto, []byte("hi")); last != nil; last = a.Send(ctx, c.ID(), echoProto, []byte("hi")) {
		require.True(t, time.Now().Before(deadline), "send never succeeded: %v", last)
		time.Sleep(100 * time.Millisecond)
	}
	<-got
}
