package test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

// WaitTimeout bounds every wait in these helpers: generous, because the race
// detector on a loaded 2-core machine slows everything down.
const WaitTimeout = 20 * time.Second

// Config returns a node configuration for tests: a fresh data directory
// under t.TempDir, TCP on an ephemeral 127.0.0.1 port, the API on an
// ephemeral loopback port, the public network.
func Config(t testing.TB, name string) node.Config {
	t.Helper()
	return node.LocalTestConfig(filepath.Join(t.TempDir(), name))
}

// StartNode creates and starts a node with cfg and closes it when the test
// ends.
func StartNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg)
	require.NoError(t, err, "new node %s", cfg.Name)
	t.Cleanup(func() { _ = n.Close() })
	require.NoError(t, n.Start(), "start node %s", cfg.Name)
	return n
}

// StartNodes starts n nodes named node0, node1, ... configure, if not nil,
// may change each configuration before its node starts; it is called in
// order, so node i may bootstrap from nodes already started.
func StartNodes(t testing.TB, n int, configure func(i int, cfg *node.Config, started []*node.Node)) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, 0, n)
	for i := range n {
		cfg := Config(t, fmt.Sprintf("node%d", i))
		if configure != nil {
			configure(i, &cfg, nodes)
		}
		nodes = append(nodes, StartNode(t, cfg))
	}
	return nodes
}

// AddrInfo returns a node's ID and its listen addresses, ready to be used
// as a bootstrap peer or for Connect.
func AddrInfo(n *node.Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}
}

// NewHost starts a bare libp2p host (no peernode protocols) listening on an
// ephemeral 127.0.0.1 TCP port: a stranger, or later an attacker. opts are
// added to the defaults and may override them.
func NewHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	base := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	}
	h, err := libp2p.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// NewBaselineHost starts a plain libp2p host with the transports a node uses
// (TCP, Noise and TLS, yamux) but none of peernode's protocols: the
// baseline the benchmarks compare against.
func NewBaselineHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	base := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		nodeTransports(),
	}
	h, err := libp2p.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// nodeTransports are a node's transports: TCP without SO_REUSEPORT, Noise
// and TLS, yamux.
func nodeTransports() libp2p.Option {
	return libp2p.ChainOptions(
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
	)
}

// Connected reports whether h has a live connection to p.
func Connected(h host.Host, p peer.ID) bool {
	return h.Network().Connectedness(p) == network.Connected
}

// WaitConnected waits until a has a live connection to b.
func WaitConnected(t testing.TB, a host.Host, b peer.ID) {
	t.Helper()
	require.Eventually(t, func() bool { return Connected(a, b) }, WaitTimeout, 10*time.Millisecond,
		"%s never connected to %s", a.ID(), b)
}

// WaitVerified waits until n's registry holds p as Verified.
func WaitVerified(t testing.TB, n *node.Node, p peer.ID) {
	t.Helper()
	WaitStatus(t, n, p, node.StatusVerified)
}

// WaitStatus waits until n's registry holds p with status want.
func WaitStatus(t testing.TB, n *node.Node, p peer.ID, want node.Status) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		info, ok := n.PeerInfo(p)
		if ok && info.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s) never saw %s as %s: last status %s, %d conns, last failure %+v",
				n.Config().Name, n.ID(), p, want, info.Status, len(info.Conns), info.LastFailure)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
