package test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

// BenchmarkConnect times Connect until the connection is fully identified
// (libp2p identify done) between two peernode hosts over loopback TCP: the
// baseline the handshake's benchmarks compare against. Each iteration also
// times a bare TCP dial to a loopback listener, so the ratio
// connect/tcp-dial holds on a noisy machine.
//
// Metrics: ns/connect (libp2p connect + identify), ns/tcp-dial (the
// baseline), connect/tcp-dial (their ratio). ns/op includes tearing the
// connection down and waiting for both sides to see it gone.
func BenchmarkConnect(b *testing.B) {
	for _, mode := range []struct {
		name   string
		secret string
	}{{"public", ""}, {"private", "benchmark network secret"}} {
		b.Run(mode.name, func(b *testing.B) {
			benchmarkConnect(b, mode.secret)
		})
	}
}

func benchmarkConnect(b *testing.B, secret string) {
	cfgA, cfgB := Config(b, "a"), Config(b, "b")
	if secret != "" {
		nw, err := node.DeriveNetwork([]byte(secret))
		require.NoError(b, err)
		cfgA.Network, cfgB.Network = nw, nw
	}
	cfgA.APIAddr, cfgB.APIAddr = "", ""
	a, bn := StartNode(b, cfgA), StartNode(b, cfgB)
	target := AddrInfo(bn)

	identified, err := a.Host().EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	require.NoError(b, err)
	defer identified.Close()
	gone, err := bn.Host().EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	require.NoError(b, err)
	defer gone.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	go acceptAndClose(ln)

	ctx := context.Background()
	var connectNs, tcpNs time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(b, err)
		tcpNs += time.Since(t0)
		_ = c.Close()

		t0 = time.Now()
		require.NoError(b, a.Host().Connect(ctx, target))
		waitEvent(b, identified.Out(), func(e any) bool {
			return e.(event.EvtPeerIdentificationCompleted).Peer == target.ID
		})
		connectNs += time.Since(t0)

		require.NoError(b, a.Host().Network().ClosePeer(target.ID))
		waitEvent(b, gone.Out(), func(e any) bool {
			ev := e.(event.EvtPeerConnectednessChanged)
			return ev.Peer == a.ID() && ev.Connectedness == network.NotConnected
		})
	}
	n := float64(b.N)
	b.ReportMetric(float64(connectNs.Nanoseconds())/n, "ns/connect")
	b.ReportMetric(float64(tcpNs.Nanoseconds())/n, "ns/tcp-dial")
	b.ReportMetric(float64(connectNs)/float64(tcpNs), "connect/tcp-dial")
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
