package scoring_test

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/stretchr/testify/require"

	"peernode/scoring"
)

// pingNet is one pinging host linked and connected to n peers that answer
// pings, peer i over a link of latencies[i] (one way).
type pingNet struct {
	mn    mocknet.Mocknet
	self  host.Host
	peers []host.Host
}

func newPingNet(t *testing.T, latencies []time.Duration) *pingNet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	self, err := mn.GenPeer()
	require.NoError(t, err)
	pn := &pingNet{mn: mn, self: self}
	for _, lat := range latencies {
		h, err := mn.GenPeer()
		require.NoError(t, err)
		ping.NewPingService(h)
		l, err := mn.LinkPeers(self.ID(), h.ID())
		require.NoError(t, err)
		l.SetOptions(mocknet.LinkOptions{Latency: lat})
		_, err = mn.ConnectPeers(self.ID(), h.ID())
		require.NoError(t, err)
		pn.peers = append(pn.peers, h)
	}
	return pn
}

func (pn *pingNet) ids() []peer.ID {
	ids := make([]peer.ID, len(pn.peers))
	for i, h := range pn.peers {
		ids[i] = h.ID()
	}
	return ids
}

// stall makes h take ping streams and never answer, until the pinger
// gives up and resets the stream.
func stall(h host.Host) {
	h.SetStreamHandler(ping.ID, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_ = s.Reset()
	})
}

func newPinger(t *testing.T, pn *pingNet, b *scoring.Book, cfg scoring.PingConfig) *scoring.Pinger {
	t.Helper()
	p, err := scoring.NewPinger(pn.self, b, pn.ids, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// kendallTau is (concordant − discordant) / pairs between two rankings
// given as each item's key in either: 1 when they agree, −1 reversed.
func kendallTau(x, y []float64) float64 {
	c, d := 0, 0
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			switch s := (x[i] - x[j]) * (y[i] - y[j]); {
			case s > 0:
				c++
			case s < 0:
				d++
			}
		}
	}
	return float64(c-d) / float64(len(x)*(len(x)-1)/2)
}

func TestKendallTau(t *testing.T) {
	require.Equal(t, 1.0, kendallTau([]float64{1, 2, 3}, []float64{10, 20, 30}))
	require.Equal(t, -1.0, kendallTau([]float64{1, 2, 3}, []float64{3, 2, 1}))
	require.InDelta(t, 1.0/3, kendallTau([]float64{1, 2, 3}, []float64{1, 3, 2}), 1e-12)
}

func TestPingerLatencyOrdering(t *testing.T) {
	const n = 20
	latencies := make([]time.Duration, n)
	for i := range latencies {
		latencies[i] = time.Millisecond + time.Duration(i)*99*time.Millisecond/(n-1)
	}
	rand.New(rand.NewPCG(60, 61)).Shuffle(n, func(i, j int) { latencies[i], latencies[j] = latencies[j], latencies[i] })
	pn := newPingNet(t, latencies)

	b, err := scoring.NewBook(scoring.DefaultParams(), nil) // the real clock
	require.NoError(t, err)
	ids := pn.ids()
	for _, id := range ids {
		b.Connected(id)
	}
	cfg := scoring.DefaultPingConfig()
	cfg.Timeout = 2 * time.Second
	p := newPinger(t, pn, b, cfg)
	const rounds = 4
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range rounds {
		p.Round(ctx)
	}

	ranked := b.Rank(ids)
	rankOf := map[peer.ID]int{}
	for i, r := range ranked {
		rankOf[r.Peer] = i
	}
	// Best rank (0) should go with the lowest latency.
	scoreOrder, latency := make([]float64, n), make([]float64, n)
	for i, id := range ids {
		scoreOrder[i] = float64(rankOf[id])
		latency[i] = float64(latencies[i])
		e := b.Explain(id)
		require.Equal(t, rounds, component(t, e, scoring.ComponentReliability).Samples, "every ping answered: %+v", e)
		require.Equal(t, rounds, component(t, e, scoring.ComponentLatency).Samples)
		require.Greater(t, e.SmoothedRTT, 2*latencies[i], "a round trip crosses the link twice")
	}
	tau := kendallTau(scoreOrder, latency)
	t.Logf("Kendall tau between score order and link latency over %d peers, %d rounds: %.3f", n, rounds, tau)
	for _, r := range ranked {
		i := slices.Index(ids, r.Peer)
		t.Logf("latency %6s  smoothed RTT %9s  score %.4f", latencies[i], b.Explain(r.Peer).SmoothedRTT.Round(10*time.Microsecond), r.Score)
	}
	require.GreaterOrEqual(t, tau, 0.9)
}

func TestPingerReportsUnreachablePeers(t *testing.T) {
	// Eight healthy peers, then one whose host is closed, one unlinked and
	// disconnected, one without a ping handler, and one that never answers.
	const healthy = 8
	pn := newPingNet(t, make([]time.Duration, healthy+4))
	ids := pn.ids()
	closed, gone, noPing, stalling := pn.peers[healthy], pn.peers[healthy+1], pn.peers[healthy+2], pn.peers[healthy+3]
	require.NoError(t, closed.Close())
	// A closed mocknet host still accepts over its link: cut it too.
	require.NoError(t, pn.mn.UnlinkPeers(pn.self.ID(), closed.ID()))
	require.NoError(t, pn.mn.UnlinkPeers(pn.self.ID(), gone.ID()))
	require.NoError(t, pn.mn.DisconnectPeers(pn.self.ID(), gone.ID()))
	noPing.RemoveStreamHandler(ping.ID)
	stall(stalling)

	b, mock := newMockBook(t, scoring.DefaultParams())
	for _, id := range ids {
		b.Connected(id)
	}
	cfg := scoring.DefaultPingConfig()
	cfg.Timeout = 300 * time.Millisecond
	p := newPinger(t, pn, b, cfg)

	ctx := context.Background()
	_, err := p.Ping(ctx, stalling.ID())
	require.ErrorIs(t, err, context.DeadlineExceeded, "a peer that never answers times out")
	for name, h := range map[string]host.Host{"closed": closed, "gone": gone, "no ping": noPing} {
		_, err := p.Ping(ctx, h.ID())
		require.Error(t, err, name)
		t.Logf("%s: %v", name, err)
	}

	p.Round(ctx)
	for _, id := range ids[healthy:] {
		require.Zero(t, component(t, b.Explain(id), scoring.ComponentReliability).Samples,
			"failure of %s counted before LocalFaultWindow", id)
	}
	decide(b, mock)
	require.Zero(t, b.LocalFaults(), "4 of 12 failing is not a local fault")
	for i, id := range ids {
		rel := component(t, b.Explain(id), scoring.ComponentReliability)
		require.Equal(t, 1, rel.Samples, "peer %d", i)
		if i < healthy {
			require.InDelta(t, 4.0/5, rel.Value, 1e-3, "peer %d answered", i)
		} else {
			require.InDelta(t, 3.0/5, rel.Value, 1e-3, "peer %d failed: %s", i, rel.Detail)
		}
	}
}

func TestPingerRoundCancelled(t *testing.T) {
	pn := newPingNet(t, make([]time.Duration, 3))
	b, mock := newMockBook(t, scoring.DefaultParams())
	p := newPinger(t, pn, b, scoring.DefaultPingConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Round(ctx)
	decide(b, mock)
	for _, id := range pn.ids() {
		e := b.Explain(id)
		require.Zero(t, component(t, e, scoring.ComponentReliability).Samples, "a cancelled ping is nobody's fault")
		require.Zero(t, component(t, e, scoring.ComponentLatency).Samples)
	}
}

func TestPingerStartClose(t *testing.T) {
	pn := newPingNet(t, make([]time.Duration, 2))
	b, err := scoring.NewBook(scoring.DefaultParams(), nil)
	require.NoError(t, err)
	cfg := scoring.DefaultPingConfig()
	cfg.Interval = 20 * time.Millisecond
	p, err := scoring.NewPinger(pn.self, b, pn.ids, cfg)
	require.NoError(t, err)
	p.Start()
	require.Eventually(t, func() bool {
		for _, id := range pn.ids() {
			if component(t, b.Explain(id), scoring.ComponentLatency).Samples < 2 {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "rounds repeat")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
	// goleak in TestMain checks that the loop is gone.
}

// TestPingerLocalOutageBeyondConcurrency: our link goes down and every
// ping times out. The Pinger says "all pings of a round start together, so
// a local outage fails them together and the Book recognises it", but with
// more peers than Concurrency the pings start in waves, Timeout apart,
// and fail in waves: each wave alone is too small a fraction of the
// connected peers to be a local fault.
func TestPingerLocalOutageBeyondConcurrency(t *testing.T) {
	latencies := make([]time.Duration, 20)
	pn := newPingNet(t, latencies)
	params := scoring.DefaultParams()
	params.LocalFaultWindow = 100 * time.Millisecond
	b, err := scoring.NewBook(params, nil)
	require.NoError(t, err)
	for _, id := range pn.ids() {
		b.Connected(id)
		b.ReportRequest(id, testProto, 10*time.Millisecond, scoring.Success)
	}
	before := scoresOf(b, pn.ids())
	for _, h := range pn.peers {
		stall(h)
	}
	cfg := scoring.DefaultPingConfig()
	cfg.Timeout = 300 * time.Millisecond
	newPinger(t, pn, b, cfg).Round(context.Background())
	require.Eventually(t, func() bool { return b.LocalFaults()+countDropped(b, before) == 20 },
		5*time.Second, 20*time.Millisecond, "every failure decided")
	require.Equal(t, 20, b.LocalFaults(), "every ping failed in one outage")
}

// countDropped counts the peers scoring clearly below before.
func countDropped(b *scoring.Book, before map[peer.ID]float64) int {
	n := 0
	for id, s := range before {
		if b.Score(id) < s-0.01 {
			n++
		}
	}
	return n
}
