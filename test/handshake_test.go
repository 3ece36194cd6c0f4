package test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/node"
	"peernode/protocols/handshake"
	"peernode/protocols/handshake/pb"
)

// Two members verify each other without anyone's help, and each registry
// shows the identity the other presented.
func TestMembersVerifyEachOther(t *testing.T) {
	t.Parallel()
	// No bootstrap peer: the reconnect below must be ours, not the
	// bootstrap loop's.
	nodes := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		if i == 1 {
			cfg.Role = handshake.RoleClient
		}
	})
	a, b := nodes[0], nodes[1]
	connect(t, b, a)
	WaitVerified(t, a, b.ID())
	WaitVerified(t, b, a.ID())

	ia, _ := a.PeerInfo(b.ID())
	require.Equal(t, "node1", ia.Identity.Name)
	require.Equal(t, handshake.RoleClient, ia.Identity.Role)
	require.Equal(t, node.Version, ia.Identity.Version)
	require.NotEmpty(t, ia.Identity.ListenAddrs)
	require.False(t, ia.VerifiedAt.IsZero())
	require.Positive(t, ia.HandshakeRTT)

	ib, _ := b.PeerInfo(a.ID())
	require.Equal(t, "node0", ib.Identity.Name)
	require.Equal(t, handshake.RoleFull, ib.Identity.Role)

	// A reconnect re-verifies; the identity is kept across the gap.
	// Discovery may redial at once (the member table remembers a), so wait
	// for the disconnection event rather than a status that may not last.
	events, err := b.Host().EventBus().Subscribe(new(node.EvtPeer))
	require.NoError(t, err)
	defer events.Close()
	require.NoError(t, b.Host().Network().ClosePeer(a.ID()))
	waitEventKind(t, events.Out(), a.ID(), node.EventDisconnected)
	ib, _ = b.PeerInfo(a.ID())
	require.Equal(t, "node0", ib.Identity.Name, "identity survives the disconnect")
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, b.Connect(ctx, AddrInfo(a)))
	WaitVerified(t, b, a.ID())
	WaitVerified(t, a, b.ID())
}

// noPnetConfig is a private network gated by the handshake alone.
func noPnetConfig(t *testing.T, name, secret string) node.Config {
	cfg := privateConfig(t, name, secret)
	cfg.Pnet = false
	return cfg
}

// Without pnet, a node of another network completes the transport handshake
// but fails ours: wrong_network on both sides, the connection closed, and
// the rejected node's further dials refused by the gater for the ban.
func TestWrongNetworkRejectedAndBanned(t *testing.T) {
	t.Parallel()
	member := StartNode(t, noPnetConfig(t, "member", "the member network's secret"))
	strangerCfg := noPnetConfig(t, "stranger", "some other network's secret")
	stranger := StartNode(t, strangerCfg)

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_ = stranger.Connect(ctx, AddrInfo(member)) // the transport connects; the handshake fails
	waitFailure(t, member, stranger.ID(), "wrong_network")
	waitFailure(t, stranger, member.ID(), "wrong_network")
	require.Eventually(t, func() bool {
		return !Connected(member.Host(), stranger.ID()) && !Connected(stranger.Host(), member.ID())
	}, WaitTimeout, 10*time.Millisecond)

	// The stranger's key on a fresh host (so only the member's gater can
	// refuse it) cannot get back in during the ban.
	key, err := node.LoadIdentity(strangerCfg.DataDir)
	require.NoError(t, err)
	again := NewHost(t, libp2p.Identity(key))
	requireRefused(t, member, again)
}

// requireRefused checks that n's gater refuses h: h may believe for a
// moment that it connected (its side of the upgrade can finish first),
// but n never admits the connection and h ends up disconnected.
func requireRefused(t *testing.T, n *node.Node, h host.Host) {
	t.Helper()
	sub, err := n.Host().EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.Peerstore().ClearAddrs(n.ID())
	_ = h.Connect(ctx, AddrInfo(n))
	require.Eventually(t, func() bool { return !Connected(h, n.ID()) }, WaitTimeout, 10*time.Millisecond)
	for {
		select {
		case e := <-sub.Out():
			ev := e.(event.EvtPeerConnectednessChanged)
			require.False(t, ev.Peer == h.ID() && ev.Connectedness == network.Connected, "the gater admitted a banned node")
		default:
			return
		}
	}
}

func waitFailure(t *testing.T, n *node.Node, p peer.ID, reason string) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		info, _ := n.PeerInfo(p)
		if info.LastFailure != nil && info.LastFailure.Reason == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last failure for %s is %+v, want reason %q", n.Config().Name, p, info.LastFailure, reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attacker is a bare host that speaks the handshake by hand to target.
func attacker(t *testing.T, target *node.Node, opts ...libp2p.Option) (*RawPeer, crypto.PrivKey) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	h := NewHost(t, append([]libp2p.Option{libp2p.Identity(key)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(target)))
	return OpenRaw(t, h, target.ID()), key
}

// Each broken hello is rejected with its reason, sent to the peer before
// the stream closes.
func TestBadHellosRejectedWithReason(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Config(t, "target"))
	nw := n.Config().Network
	cases := []struct {
		name   string
		change func(h *pb.Hello)
		want   pb.Reason
	}{
		{"incompatible version", func(h *pb.Hello) { h.MinVersion, h.MaxVersion = 7, 9 }, pb.Reason_INCOMPATIBLE_VERSION},
		{"clock skew", func(h *pb.Hello) { h.TimestampMs = time.Now().Add(-6 * time.Minute).UnixMilli() }, pb.Reason_CLOCK_SKEW},
		{"bad magic", func(h *pb.Hello) { h.Magic = 0xdeadbeef }, pb.Reason_BAD_MAGIC},
		{"wrong network", func(h *pb.Hello) { h.NetworkId = "0123456789abcdef" }, pb.Reason_WRONG_NETWORK},
		{"short nonce", func(h *pb.Hello) { h.Nonce = h.Nonce[:5] }, pb.Reason_MALFORMED},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, _ := attacker(t, n)
			h := ValidHello(nw)
			tc.change(h)
			raw.Send(HelloFrame(h))
			res := raw.RecvResult()
			require.Equal(t, pb.Outcome_REJECTED, res.GetOutcome())
			require.Equal(t, tc.want, res.GetReason(), res.GetMessage())
			require.NotEmpty(t, res.GetMessage())
		})
	}
}

// A peer whose proof signs the wrong transcript is rejected: bad_proof.
func TestBadProofRejected(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Config(t, "target"))
	nw := n.Config().Network
	raw, key := attacker(t, n)
	raw.Send(HelloFrame(ValidHello(nw)))
	f, err := raw.Recv()
	require.NoError(t, err)
	require.NotNil(t, f.GetHello())
	// The open policy decides ahead of our proof; the proof still counts.
	early, _ := raw.RecvProof()
	require.Equal(t, pb.Outcome_VERIFIED, early.GetOutcome())
	wrong := handshake.Transcript(nw.ID, raw.S.Conn().LocalPeer(), n.ID(), []byte("not the hello"), []byte("that was sent"))
	p, err := handshake.Prove(key, nw.HandshakeKey, true, wrong)
	require.NoError(t, err)
	raw.Send(ProofFrame(p))
	res := raw.RecvResult()
	require.Equal(t, pb.Outcome_REJECTED, res.GetOutcome())
	require.Equal(t, pb.Reason_BAD_PROOF, res.GetReason())
	waitFailure(t, n, raw.S.Conn().LocalPeer(), "bad_proof")
}

// A hello and proof recorded on one connection fail on another: the
// responder's fresh nonce changes the transcript.
func TestReplayedProofRejected(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Config(t, "target"))
	nw := n.Config().Network
	key, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	h := NewHost(t, libp2p.Identity(key))
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(n)))

	// A genuine handshake, recorded.
	raw := OpenRaw(t, h, n.ID())
	hello := ValidHello(nw)
	raw.Send(HelloFrame(hello))
	f, err := raw.Recv()
	require.NoError(t, err)
	tr := handshake.Transcript(nw.ID, h.ID(), n.ID(), Marshal(t, hello), Marshal(t, f.GetHello()))
	proof, err := handshake.Prove(key, nw.HandshakeKey, true, tr)
	require.NoError(t, err)
	raw.Send(ProofFrame(proof))
	res := raw.RecvResult()
	require.Equal(t, pb.Outcome_VERIFIED, res.GetOutcome(), res.GetMessage())
	raw.Send(ResultFrame(&pb.Result{Outcome: pb.Outcome_VERIFIED}))
	WaitVerified(t, n, h.ID())

	// The same frames on a new connection.
	require.NoError(t, h.Network().ClosePeer(n.ID()))
	WaitStatus(t, n, h.ID(), node.StatusDisconnected)
	require.NoError(t, h.Connect(ctx, AddrInfo(n)))
	replay := OpenRaw(t, h, n.ID())
	replay.Send(HelloFrame(hello))
	_, err = replay.Recv()
	require.NoError(t, err)
	replay.RecvProof()
	replay.Send(ProofFrame(proof))
	res = replay.RecvResult()
	require.Equal(t, pb.Outcome_REJECTED, res.GetOutcome())
	require.Equal(t, pb.Reason_BAD_PROOF, res.GetReason())
}

// A bare host that connects and never handshakes is disconnected once the
// handshake timeout passes.
func TestSilentPeerDisconnectedAfterTimeout(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "target")
	cfg.HandshakeTimeout = 300 * time.Millisecond
	n := StartNode(t, cfg)
	h := NewHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(n)))
	require.Eventually(t, func() bool { return !Connected(n.Host(), h.ID()) }, WaitTimeout, 10*time.Millisecond)
	waitFailure(t, n, h.ID(), "timeout")
}

// A node that does not speak the handshake is disconnected by the dialer.
func TestDialerDropsPeerWithoutHandshake(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Config(t, "dialer"))
	h := NewHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, n.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))
	require.Eventually(t, func() bool { return !Connected(n.Host(), h.ID()) }, WaitTimeout, 10*time.Millisecond)
	info, _ := n.PeerInfo(h.ID())
	require.NotEqual(t, node.StatusVerified, info.Status)
}

const echoProto = "/peernode-test/echo/1.0.0"

// Application streams before verification are reset and counted; past
// MaxViolations the node is disconnected and banned.
func TestGateResetsAndBansUnverified(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "gated")
	cfg.MaxViolations = 3
	n := StartNode(t, cfg)
	served := make(chan struct{}, 16)
	n.Handle(echoProto, func(s network.Stream) { served <- struct{}{}; _ = s.Close() })

	h := NewHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(n)))
	for i := 0; i <= cfg.MaxViolations; i++ {
		s, err := h.NewStream(ctx, n.ID(), echoProto)
		if err != nil {
			break // already disconnected
		}
		_, _ = s.Write([]byte("hi"))
		_, err = s.Read(make([]byte, 1))
		require.Error(t, err, "an unverified stream must be reset")
	}
	require.Empty(t, served, "the handler must never run for an unverified node")
	require.Eventually(t, func() bool { return !Connected(n.Host(), h.ID()) }, WaitTimeout, 10*time.Millisecond)
	waitFailure(t, n, h.ID(), "banned")
	requireRefused(t, n, h)

	// A verified member gets through the same gate.
	m := StartNode(t, Config(t, "member"))
	require.NoError(t, m.Connect(ctx, AddrInfo(n)))
	WaitVerified(t, n, m.ID())
	WaitVerified(t, m, n.ID())
	require.NoError(t, m.Send(ctx, n.ID(), echoProto, []byte("hello")))
	<-served
}

// Oversized, truncated and garbage frames get a typed rejection or a reset,
// never a crash, and the node goes on serving members.
func TestBrokenFramesDoNotHurtTheNode(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Config(t, "target"))
	for name, b := range map[string][]byte{
		"oversized": {0x80, 0x80, 0x40}, // length prefix of 1 MiB
		"garbage":   append([]byte{byte(len("this is no protobuf"))}, []byte("this is no protobuf")...),
		"empty":     {0},
	} {
		t.Run(name, func(t *testing.T) {
			raw, _ := attacker(t, n)
			raw.SendBytes(b)
			res := raw.RecvResult()
			require.Equal(t, pb.Reason_MALFORMED, res.GetReason(), res.GetMessage())
		})
	}
	t.Run("truncated", func(t *testing.T) {
		raw, _ := attacker(t, n)
		b, err := handshake.EncodeFrame(HelloFrame(ValidHello(n.Config().Network)))
		require.NoError(t, err)
		raw.SendBytes(b[:len(b)/2])
		require.NoError(t, raw.S.CloseWrite())
		_, err = raw.Recv()
		require.Error(t, err)
	})
	m := StartNode(t, Config(t, "member"))
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, m.Connect(ctx, AddrInfo(n)))
	WaitVerified(t, n, m.ID())
}
