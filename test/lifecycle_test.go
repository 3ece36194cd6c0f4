package test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/stretchr/testify/require"
)

// A node that loses many connections at once while its bootstrap peer is
// down (its bootstrap loop dialling and backing off) must still close its
// host: every subscriber of the event bus has to keep reading, or the
// swarm's connection events block and closing connections hangs.
func TestHostClosesWithManyConnectionsAndBootstrapDown(t *testing.T) {
	t.Parallel()
	dead := NewHost(t)
	deadInfo := peer.AddrInfo{ID: dead.ID(), Addrs: dead.Addrs()}
	require.NoError(t, dead.Close())

	cfg := Config(t, "lonely")
	cfg.APIAddr = ""
	cfg.Bootstrap = []peer.AddrInfo{deadInfo}
	// The strangers never handshake: keep them connected while the other
	// 39 connect on a loaded machine, past the test profile's 5 s timeout.
	cfg.HandshakeTimeout = time.Minute
	n := StartNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	const strangers = 40
	for range strangers {
		// The swarm gives a loopback dial 5 s: under the whole -race suite
		// the node has answered a security handshake later than that.
		h := NewHost(t, libp2p.WithDialTimeout(WaitTimeout), libp2p.SwarmOpts(swarm.WithDialTimeoutLocal(WaitTimeout)))
		require.NoError(t, h.Connect(ctx, AddrInfo(n)))
	}
	require.Eventually(t, func() bool { return len(n.Host().Network().Peers()) >= strangers },
		WaitTimeout, 10*time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- n.Host().Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(WaitTimeout):
		t.Fatal("closing the host hung with the bootstrap peer down")
	}
}
