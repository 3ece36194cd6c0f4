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
				info, _ := a.PeerInfo(b.ID())
				require.Equal(t, node.StatusVerified, info.Status, "%s lost %s with the bootstrap node", a.Config().Name, b.Config().Name)
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
	require.Empty(t, a.Host().Peerstore().Addrs(c.ID()), "a must not know c's address yet")
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.Eventually(t, func() bool { return a.Send(ctx, c.ID(), echoProto, []byte("hi")) == nil }, WaitTimeout, 100*time.Millisecond)
	<-got
}
