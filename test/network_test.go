package test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

// Three nodes, chained: B bootstraps from A, C from B. Each ends up connected
// to its bootstrap peer, and all three report the same network.
func TestChainedBootstrap(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 3, func(i int, cfg *node.Config, started []*node.Node) {
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[i-1]))
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	WaitConnected(t, b.Host(), a.ID())
	WaitConnected(t, c.Host(), b.ID())
	WaitConnected(t, a.Host(), b.ID())
	WaitConnected(t, b.Host(), c.ID())
	for _, n := range nodes {
		require.Equal(t, a.Config().Network.ID, n.Config().Network.ID)
		require.False(t, n.Config().Network.Private)
	}
}

func privateConfig(t *testing.T, name, secret string) node.Config {
	t.Helper()
	cfg := Config(t, name)
	nw, err := node.DeriveNetwork([]byte(secret))
	require.NoError(t, err)
	cfg.Network = nw
	return cfg
}

// A private network admits nodes with its secret and nobody else: not a
// node of another private network, not a node of the public network.
func TestPrivateNetworkIsolation(t *testing.T) {
	t.Parallel()
	const secret = "correct horse battery staple"
	member := StartNode(t, privateConfig(t, "member", secret))
	target := AddrInfo(member)

	friend := StartNode(t, privateConfig(t, "friend", secret))
	stranger := StartNode(t, privateConfig(t, "stranger", "another network's secret"))
	public := StartNode(t, Config(t, "public"))

	require.Equal(t, member.Config().Network.ID, friend.Config().Network.ID)
	require.NotEqual(t, member.Config().Network.ID, stranger.Config().Network.ID)

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, friend.Connect(ctx, target), "same secret must connect")
	WaitConnected(t, member.Host(), friend.ID())

	// Outsiders, including a bare libp2p host without pnet, try at once: a
	// failed pnet handshake can take until the dial timeout to give up.
	outsiders := []host.Host{stranger.Host(), public.Host(), NewHost(t)}
	errs := make(chan error, len(outsiders))
	for _, h := range outsiders {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs <- h.Connect(ctx, target)
		}()
	}
	for range outsiders {
		require.Error(t, <-errs, "an outsider connected to a private member")
	}
	for _, h := range outsiders {
		require.False(t, Connected(h, member.ID()))
		require.False(t, Connected(member.Host(), h.ID()))
	}
}

// A restarted node keeps its node ID: the key lives in the data directory.
func TestRestartKeepsNodeID(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "restart")
	n, err := node.New(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start())
	first := n.ID()
	require.NoError(t, n.Close())
	require.NoError(t, n.Close(), "Close must be idempotent")

	n2 := StartNode(t, cfg)
	require.Equal(t, first, n2.ID())
}

// Two nodes cannot share a data directory.
func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "locked")
	StartNode(t, cfg)
	_, err := node.New(cfg)
	require.ErrorIs(t, err, node.ErrDataDirInUse)
}

// A bootstrap peer that is down at start is a warning, not a failure: the
// node keeps retrying and connects once the peer comes up.
func TestBootstrapRetriesUntilReachable(t *testing.T) {
	t.Parallel()
	seedCfg := Config(t, "seed")
	seed := StartNode(t, seedCfg)
	seedInfo := AddrInfo(seed)
	// Pin the seed to the port it got, then stop it.
	seedCfg.ListenAddrs = seed.Host().Addrs()
	require.NoError(t, seed.Close())

	cfg := Config(t, "joiner")
	cfg.Bootstrap = append(cfg.Bootstrap, seedInfo)
	joiner := StartNode(t, cfg)
	require.False(t, Connected(joiner.Host(), seedInfo.ID))

	seed = StartNode(t, seedCfg)
	require.Equal(t, seedInfo.ID, seed.ID())
	WaitConnected(t, joiner.Host(), seed.ID())
}

// When a node loses its last peer it dials the bootstrap peers again.
func TestBootstrapRedialsAfterLosingAllPeers(t *testing.T) {
	t.Parallel()
	seed := StartNode(t, Config(t, "seed"))
	cfg := Config(t, "joiner")
	cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(seed))
	joiner := StartNode(t, cfg)
	WaitVerified(t, joiner, seed.ID())
	WaitVerified(t, seed, joiner.ID())

	// The seed drops the joiner; only the joiner's bootstrap loop dials back,
	// so a connection opened after the drop proves the redial.
	dropped := time.Now()
	require.NoError(t, seed.Host().Network().ClosePeer(joiner.ID()))
	require.Eventually(t, func() bool {
		for _, c := range joiner.Host().Network().ConnsToPeer(seed.ID()) {
			if c.Stat().Opened.After(dropped) {
				return true
			}
		}
		return false
	}, WaitTimeout, 10*time.Millisecond)
}
