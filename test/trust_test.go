package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/discovery"
	"peernode/node"
	"peernode/protocols/handshake"
)

func connect(t *testing.T, from, to *node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, from.Connect(ctx, AddrInfo(to)))
}

// Allowlist: only allowed node IDs get in; allowing one admits it.
func TestAllowlistPolicy(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "guarded")
	cfg.Trust = handshake.PolicyAllowlist
	guarded := StartNode(t, cfg)
	friend := StartNode(t, Config(t, "friend"))
	other := StartNode(t, Config(t, "other"))
	_, err := guarded.Allow(friend.ID(), "test")
	require.NoError(t, err)

	connect(t, friend, guarded)
	WaitVerified(t, guarded, friend.ID())
	WaitVerified(t, friend, guarded.ID())

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_ = other.Connect(ctx, AddrInfo(guarded))
	waitFailure(t, guarded, other.ID(), "not_allowed")
	waitFailure(t, other, guarded.ID(), "not_allowed")
}

// Manual: an unknown member waits as pending on both sides; approval makes
// both Verified without reconnecting; the decision survives a restart.
func TestManualApproveWithoutReconnect(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "manual")
	cfg.Trust = handshake.PolicyManual
	admin := StartNode(t, cfg)
	jcfg := Config(t, "joiner")
	jcfg.Justification = "lab box 7, ticket 1234"
	joiner := StartNode(t, jcfg)

	connect(t, joiner, admin)
	WaitStatus(t, admin, joiner.ID(), node.StatusPending)
	WaitStatus(t, joiner, admin.ID(), node.StatusPending)
	pending := admin.PendingRequests()
	require.Len(t, pending, 1)
	require.Equal(t, joiner.ID(), pending[0].NodeID)
	require.Equal(t, "joiner", pending[0].Name)
	require.Equal(t, "lab box 7, ticket 1234", pending[0].Justification)

	// Pending peers get ErrNotVerified at once, both ways.
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_, err := joiner.OpenStream(ctx, admin.ID(), echoProto)
	require.ErrorIs(t, err, node.ErrNotVerified)

	conns := admin.Host().Network().ConnsToPeer(joiner.ID())
	_, err = admin.Approve(joiner.ID(), "")
	require.NoError(t, err)
	WaitVerified(t, admin, joiner.ID())
	WaitVerified(t, joiner, admin.ID())
	require.Equal(t, conns, admin.Host().Network().ConnsToPeer(joiner.ID()), "approval must not reconnect")
	require.Empty(t, admin.PendingRequests())

	// The decision persists.
	require.NoError(t, admin.Close())
	again := StartNode(t, cfg)
	recs := again.TrustRecords()
	require.Len(t, recs, 1)
	require.Equal(t, joiner.ID(), recs[0].NodeID)
	require.Equal(t, handshake.DecisionAllow, recs[0].Decision)
	require.Equal(t, "joiner", recs[0].Name)
	connect(t, joiner, again)
	WaitVerified(t, again, joiner.ID())
}

// Rejecting a pending member disconnects and bans it.
func TestManualRejectBans(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "manual")
	cfg.Trust = handshake.PolicyManual
	admin := StartNode(t, cfg)
	jcfg := Config(t, "joiner")
	joiner := StartNode(t, jcfg)
	connect(t, joiner, admin)
	WaitStatus(t, admin, joiner.ID(), node.StatusPending)

	_, err := admin.Reject(joiner.ID(), "unknown box")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !Connected(admin.Host(), joiner.ID()) }, WaitTimeout, 10*time.Millisecond)
	waitFailure(t, joiner, admin.ID(), "not_allowed")
	_, err = admin.Approve(joiner.ID(), "")
	require.ErrorIs(t, err, node.ErrNotPending)

	key, err := node.LoadIdentity(jcfg.DataDir)
	require.NoError(t, err)
	requireRefused(t, admin, NewHost(t, libp2p.Identity(key)))
}

// Revoking a verified member tells it, drops it and bans it until it is
// allowed again.
func TestRevoke(t *testing.T) {
	t.Parallel()
	admin := StartNode(t, Config(t, "admin"))
	member := StartNode(t, Config(t, "member"))
	connect(t, member, admin)
	WaitVerified(t, admin, member.ID())
	WaitVerified(t, member, admin.ID())

	sub, err := admin.Host().EventBus().Subscribe(new(node.EvtPeer))
	require.NoError(t, err)
	defer sub.Close()
	_, err = admin.Revoke(member.ID(), "decommissioned")
	require.NoError(t, err)
	waitFailure(t, member, admin.ID(), "not_allowed")
	require.Eventually(t, func() bool {
		return !Connected(member.Host(), admin.ID()) && !Connected(admin.Host(), member.ID())
	}, WaitTimeout, 10*time.Millisecond)
	waitEventKind(t, sub.Out(), member.ID(), node.EventRevoked)

	// The member honours the retry-after hint (the ban's length) and does
	// not dial back; allowed again, the admin's side connects to it.
	_, err = admin.Allow(member.ID(), "back in service")
	require.NoError(t, err)
	connect(t, admin, member)
	WaitVerified(t, admin, member.ID())
	WaitVerified(t, member, admin.ID())
}

func waitEventKind(t *testing.T, ch <-chan any, p peer.ID, kind node.EventKind) {
	t.Helper()
	timeout := time.After(WaitTimeout)
	for {
		select {
		case e := <-ch:
			if ev := e.(node.EvtPeer); ev.Peer == p && ev.Kind == kind {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", kind, p)
		}
	}
}

// copyKey gives dst the node key of src: a cloned data directory.
func copyKey(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, node.KeyFileName))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dst, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dst, node.KeyFileName), b, 0o600))
}

// Two processes with one key: under reconnect the newest session wins,
// under strict the first one stays and the second is rejected.
func TestDuplicateKey(t *testing.T) {
	t.Parallel()
	for _, policy := range []node.DuplicatePolicy{node.DuplicateReconnect, node.DuplicateStrict} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			cfg := Config(t, "hub")
			cfg.DuplicatePolicy = policy
			hub := StartNode(t, cfg)
			c1 := Config(t, "first")
			first := StartNode(t, c1)
			c2 := Config(t, "clone")
			copyKey(t, c1.DataDir, c2.DataDir)
			clone := StartNode(t, c2)
			require.Equal(t, first.ID(), clone.ID())

			connect(t, first, hub)
			WaitVerified(t, hub, first.ID())
			ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
			defer cancel()
			_ = clone.Connect(ctx, AddrInfo(hub))
			if policy == node.DuplicateReconnect {
				WaitVerified(t, clone, hub.ID())
				require.Eventually(t, func() bool { return !Connected(first.Host(), hub.ID()) }, WaitTimeout, 10*time.Millisecond,
					"the older process must be dropped")
				WaitVerified(t, hub, clone.ID())
				return
			}
			waitFailure(t, clone, hub.ID(), "duplicate")
			require.True(t, Connected(first.Host(), hub.ID()), "strict keeps the first process")
			info, _ := first.PeerInfo(hub.ID())
			require.Equal(t, node.StatusVerified, info.Status)
		})
	}
}

// Send by node ID: verified goes at once; not connected dials and waits for
// verification; unreachable fails with ErrUnreachable.
func TestSendByNodeID(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	got := make(chan string, 4)
	b.Handle(echoProto, func(s network.Stream) {
		buf := make([]byte, 64)
		n, _ := s.Read(buf)
		got <- string(buf[:n])
		_ = s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()

	// Not connected: a knows b's addresses, dials, waits for Verified.
	a.Host().Peerstore().AddAddrs(b.ID(), b.Host().Addrs(), time.Hour)
	require.NoError(t, a.Send(ctx, b.ID(), echoProto, []byte("first")))
	require.Equal(t, "first", <-got)
	// Verified: at once.
	require.NoError(t, a.Send(ctx, b.ID(), echoProto, []byte("second")))
	require.Equal(t, "second", <-got)

	// Unreachable: a node nobody knows how to reach.
	ghost := StartNode(t, Config(t, "ghost")).ID()
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	err := a.Send(short, ghost, echoProto, []byte("x"))
	require.Error(t, err)
	require.True(t, errors.Is(err, node.ErrUnreachable), "%v", err)
}

// Both nodes dial each other at once: exactly one session survives, and
// both end Verified over one connection.
func TestSimultaneousDial(t *testing.T) {
	t.Parallel()
	for i := range 5 {
		nodes := StartNodes(t, 2, nil)
		a, b := nodes[0], nodes[1]
		errs := make(chan error, 2)
		go func() { errs <- a.Connect(context.Background(), AddrInfo(b)) }()
		go func() { errs <- b.Connect(context.Background(), AddrInfo(a)) }()
		<-errs
		<-errs
		WaitVerified(t, a, b.ID())
		WaitVerified(t, b, a.ID())
		require.Eventually(t, func() bool {
			return len(a.Host().Network().ConnsToPeer(b.ID())) == 1 && len(b.Host().Network().ConnsToPeer(a.ID())) == 1
		}, WaitTimeout, 10*time.Millisecond, "round %d: one connection must remain", i)
		infoA, _ := a.PeerInfo(b.ID())
		require.Equal(t, node.StatusVerified, infoA.Status)
	}
}

// A process holding a verified node's key, but that never passed a
// handshake (a thief without the network's secret, say), gets nothing
// through the gate, and streams to that node go to the verified process,
// not to it.
func TestImpostorWithAVerifiedKey(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, nil)
	hub, member := nodes[0], nodes[1]
	connect(t, member, hub)
	WaitVerified(t, hub, member.ID())
	WaitVerified(t, member, hub.ID())
	served := make(chan string, 4)
	echo := func(who string) network.StreamHandler {
		return func(s network.Stream) {
			defer s.Close()
			buf := make([]byte, 64)
			n, _ := s.Read(buf)
			served <- who + ":" + string(buf[:n])
			_, _ = s.Write([]byte(who))
		}
	}
	hub.Handle(echoProto, echo("hub"))
	member.Handle(echoProto, echo("member"))

	key, err := node.LoadIdentity(member.Config().DataDir)
	require.NoError(t, err)
	thief := NewHost(t, libp2p.Identity(key), nodeTransports())
	require.Equal(t, member.ID(), thief.ID())
	thief.SetStreamHandler(echoProto, echo("thief"))
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, thief.Connect(ctx, AddrInfo(hub)))
	require.Eventually(t, func() bool { return len(hub.Host().Network().ConnsToPeer(member.ID())) == 2 },
		WaitTimeout, 10*time.Millisecond, "the hub must hold both processes' connections")

	// The thief's stream is reset: its connection was never verified,
	// though the key's node is.
	s, err := thief.NewStream(ctx, hub.ID(), echoProto)
	if err == nil {
		_, _ = s.Write([]byte("let me in"))
		_, err = io.ReadAll(s)
	}
	require.Error(t, err, "a stream over an unverified connection must be refused")

	// The hub's streams to the node go to the verified process, each time,
	// even when the thief's connection carries the most streams (libp2p's
	// choice of a connection): it holds a few DHT streams open, which are
	// not gated.
	kad := discovery.ProtocolPrefix(hub.Config().Network.ID) + "/kad/1.0.0"
	for range 6 {
		ks, err := thief.NewStream(ctx, hub.ID(), kad)
		require.NoError(t, err)
		t.Cleanup(func() { _ = ks.Reset() })
	}
	require.Eventually(t, func() bool {
		for _, c := range hub.Host().Network().ConnsToPeer(member.ID()) {
			if len(c.GetStreams()) >= 6 {
				return true
			}
		}
		return false
	}, WaitTimeout, 10*time.Millisecond, "the thief's DHT streams never showed on the hub")
	for i := range 5 {
		s, err := hub.OpenStream(ctx, member.ID(), echoProto)
		require.NoError(t, err)
		_, err = s.Write(fmt.Appendf(nil, "hello %d", i))
		require.NoError(t, err)
		require.NoError(t, s.CloseWrite())
		reply, err := io.ReadAll(s)
		require.NoError(t, err)
		require.Equal(t, "member", string(reply))
		require.Equal(t, fmt.Sprintf("member:hello %d", i), <-served)
	}
	require.Empty(t, served, "nothing reached the thief, nor the hub's handler")
}
