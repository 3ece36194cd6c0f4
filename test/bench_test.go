package test

import (
	"fmt"

	"context"
	"github.com/libp2p/go-libp2p"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/require"

	"peernode/discovery"
	"peernode/node"
	"peernode/scoring"
)

// BenchmarkConnect times Connect until the connection is fully identified
// (libp2p identify done) between two baseline hosts (a node's transports,
// no peernode protocols) over loopback TCP: the baseline the handshake's
// benchmarks compare against. Each iteration also times a bare TCP dial to
// a loopback listener, so the ratio connect/tcp-dial holds on a noisy
// machine.
//
// Metrics: ns/connect, ns/tcp-dial, connect/tcp-dial. ns/op includes
// tearing the connection down and waiting for both sides to see it gone.
func BenchmarkConnect(b *testing.B) {
	a, c := NewBaselineHost(b), NewBaselineHost(b)
	identified := subscribe(b, a, new(event.EvtPeerIdentificationCompleted))
	gone := subscribe(b, c, new(event.EvtPeerConnectednessChanged))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	go acceptAndClose(ln)

	var connectNs, tcpNs time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(b, err)
		tcpNs += time.Since(t0)
		_ = conn.Close()

		connectNs += connectIdentified(b, a, c, identified, gone)
	}
	n := float64(b.N)
	b.ReportMetric(float64(connectNs.Nanoseconds())/n, "ns/connect")
	b.ReportMetric(float64(tcpNs.Nanoseconds())/n, "ns/tcp-dial")
	b.ReportMetric(float64(connectNs)/float64(tcpNs), "connect/tcp-dial")
}

// connectIdentified connects a to c, waits for identify, returns the time
// taken, then disconnects and waits until c has seen it.
func connectIdentified(b *testing.B, a, c host.Host, identified, gone event.Subscription) time.Duration {
	t0 := time.Now()
	require.NoError(b, a.Connect(context.Background(), peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}))
	waitEvent(b, identified.Out(), func(e any) bool {
		return e.(event.EvtPeerIdentificationCompleted).Peer == c.ID()
	})
	d := time.Since(t0)
	require.NoError(b, a.Network().ClosePeer(c.ID()))
	waitGone(b, gone, a.ID())
	return d
}

func waitGone(b *testing.B, gone event.Subscription, p peer.ID) {
	waitEvent(b, gone.Out(), func(e any) bool {
		ev := e.(event.EvtPeerConnectednessChanged)
		return ev.Peer == p && ev.Connectedness == network.NotConnected
	})
}

// BenchmarkHandshake times connect-to-Verified between two nodes against
// connect-to-identified between two baseline hosts, alternating in the
// same loop. Each iteration dials from a fresh node (and a fresh baseline
// host), made outside the timed part: a node's DHT would otherwise redial
// the peer an iteration just dropped. Target: p50 ratio <= 1.3.
//
// Metrics: p50-ns/verified, p50-ns/identified, verified/identified-p50.
func BenchmarkHandshake(b *testing.B) {
	cfg := Config(b, "target")
	cfg.APIAddr = ""
	// Scoring at its production pace, not the test profile's 200 ms pings.
	cfg.Ping, cfg.ScoreInterval = scoring.DefaultPingConfig(), node.DefaultScoreInterval
	target := StartNode(b, cfg)
	baseTarget := NewBaselineHost(b)
	var ver, idn []time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		idn = append(idn, timeIdentified(b, baseTarget))
		ver = append(ver, timeVerified(b, target, i))
		i++
	}
	pv, pi := p50(ver), p50(idn)
	b.ReportMetric(float64(pv.Nanoseconds()), "p50-ns/verified")
	b.ReportMetric(float64(pi.Nanoseconds()), "p50-ns/identified")
	b.ReportMetric(float64(pv)/float64(pi), "verified/identified-p50")
}

// timeIdentified connects a fresh baseline host to target and times it
// until identify completes.
func timeIdentified(b *testing.B, target host.Host) time.Duration {
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay(), nodeTransports())
	require.NoError(b, err)
	defer h.Close()
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	require.NoError(b, err)
	defer sub.Close()
	t0 := time.Now()
	require.NoError(b, h.Connect(context.Background(), peer.AddrInfo{ID: target.ID(), Addrs: target.Addrs()}))
	waitEvent(b, sub.Out(), func(e any) bool { return e.(event.EvtPeerIdentificationCompleted).Peer == target.ID() })
	return time.Since(t0)
}

// timeVerified starts a fresh node, connects it to target and times it
// until its registry holds target as Verified.
func timeVerified(b *testing.B, target *node.Node, i int) time.Duration {
	cfg := Config(b, fmt.Sprintf("dialer%d", i))
	cfg.APIAddr = ""
	// A fresh node's own start (announcing, DHT and rendezvous rounds) is
	// not the handshake's cost: keep those loops quiet for the iteration.
	cfg.DHTMode = discovery.DHTClient
	cfg.AnnounceInterval, cfg.StaleAfter, cfg.RendezvousInterval = time.Hour, 2*time.Hour, time.Hour
	cfg.Ping, cfg.ScoreInterval = scoring.DefaultPingConfig(), node.DefaultScoreInterval
	n, err := node.New(cfg)
	require.NoError(b, err)
	defer n.Close()
	require.NoError(b, n.Start())
	sub, err := n.Host().EventBus().Subscribe(new(node.EvtPeer))
	require.NoError(b, err)
	defer sub.Close()
	t0 := time.Now()
	require.NoError(b, n.Connect(context.Background(), AddrInfo(target)))
	waitEvent(b, sub.Out(), func(e any) bool {
		ev := e.(node.EvtPeer)
		return ev.Peer == target.ID() && ev.Kind == node.EventVerified
	})
	return time.Since(t0)
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkGate compares opening streams through the verified-only gate
// with the same echo protocol registered without it, alternating in one
// loop between two verified nodes. Target: gated/ungated rate >= 0.95.
//
// Metrics: ns/gated-stream, ns/ungated-stream, gated/ungated-rate.
func BenchmarkGate(b *testing.B) {
	nodes := StartNodes(b, 2, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		if i == 1 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	server, client := nodes[0], nodes[1]
	WaitVerified(b, client, server.ID())
	WaitVerified(b, server, client.ID())
	const gated, ungated = "/peernode-bench/gated/1.0.0", "/peernode-bench/ungated/1.0.0"
	server.Handle(gated, echoOnce)
	server.Host().SetStreamHandler(ungated, echoOnce)

	ctx := context.Background()
	roundTrip := func(proto string) time.Duration {
		t0 := time.Now()
		s, err := client.OpenStream(ctx, server.ID(), protocolID(proto))
		require.NoError(b, err)
		_, err = s.Write([]byte{1})
		require.NoError(b, err)
		_, err = io.ReadFull(s, make([]byte, 1))
		require.NoError(b, err)
		_ = s.Close()
		return time.Since(t0)
	}
	roundTrip(gated)
	roundTrip(ungated)
	var g, u time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		// Alternate which goes first, so neither gains from the other
		// having warmed the path.
		if i%2 == 0 {
			g += roundTrip(gated)
			u += roundTrip(ungated)
		} else {
			u += roundTrip(ungated)
			g += roundTrip(gated)
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(g.Nanoseconds())/n, "ns/gated-stream")
	b.ReportMetric(float64(u.Nanoseconds())/n, "ns/ungated-stream")
	b.ReportMetric(float64(u)/float64(g), "gated/ungated-rate")
}

func echoOnce(s network.Stream) {
	buf := make([]byte, 1)
	if _, err := io.ReadFull(s, buf); err == nil {
		_, _ = s.Write(buf)
	}
	_ = s.Close()
}

func subscribe(b testing.TB, h host.Host, evt any) event.Subscription {
	sub, err := h.EventBus().Subscribe(evt)
	require.NoError(b, err)
	b.Cleanup(func() { _ = sub.Close() })
	return sub
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

func waitEvent(b *testing.B, ch <-chan any, match func(any) bool) {
	b.Helper()
	timeout := time.After(WaitTimeout)
	for {
		select {
		case e := <-ch:
			if match(e) {
				return
			}
		case <-timeout:
			b.Fatal("timed out waiting for an event")
		}
	}
}

func protocolID(s string) protocol.ID { return protocol.ID(s) }
