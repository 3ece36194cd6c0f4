package test

import (
	"context"
	"syscall"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

func quicAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// The public network speaks QUIC as well as TCP.
func TestPublicNetworkConnectsOverQUIC(t *testing.T) {
	t.Parallel()
	listen := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	nodes := StartNodes(t, 2, func(_ int, cfg *node.Config, _ []*node.Node) { cfg.ListenAddrs = listen })
	a, b := nodes[0], nodes[1]
	q := quicAddrs(b.Host().Addrs())
	require.NotEmpty(t, q, "b must listen on QUIC")

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	info := AddrInfo(b)
	info.Addrs = q
	require.NoError(t, a.Connect(ctx, info))
	conns := a.Host().Network().ConnsToPeer(b.ID())
	require.NotEmpty(t, conns)
	require.NotEmpty(t, quicAddrs([]ma.Multiaddr{conns[0].RemoteMultiaddr()}), "the connection must be QUIC")
}

// A private network listens on TCP only, even when QUIC is asked for: pnet
// cannot protect QUIC.
func TestPrivateNetworkSkipsQUIC(t *testing.T) {
	t.Parallel()
	cfg := privateConfig(t, "private", "a private network's secret")
	cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	n := StartNode(t, cfg)
	require.NotEmpty(t, n.Host().Addrs())
	require.Empty(t, quicAddrs(n.Host().Addrs()))
}

// A port another node holds is an error naming the address, for TCP and
// QUIC alike, never a silently shared port.
func TestListenOnTakenPortFails(t *testing.T) {
	t.Parallel()
	listen := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	cfg := Config(t, "holder")
	cfg.ListenAddrs = listen
	holder := StartNode(t, cfg)
	for _, taken := range holder.Host().Addrs() {
		second := Config(t, "second")
		second.ListenAddrs = []ma.Multiaddr{taken}
		n, err := node.New(second)
		require.NoError(t, err)
		err = n.Start()
		require.NoError(t, n.Close())
		var le *node.ListenError
		require.ErrorAs(t, err, &le, "listening on taken %s must fail", taken)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		require.Contains(t, err.Error(), taken.String())
	}
}
