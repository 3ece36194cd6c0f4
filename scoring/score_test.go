package scoring_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/scoring"
)

// requireExplained checks p's explanation against its score: components
// and score in [0, 1], contributions weight·value adding up to the score.
func requireExplained(t *testing.T, b *scoring.Book, p peer.ID) {
	t.Helper()
	e := b.Explain(p)
	score := b.Score(p)
	require.Len(t, e.Components, 4)
	sum := 0.0
	for _, c := range e.Components {
		require.GreaterOrEqual(t, c.Value, 0.0, "%s of %s: %+v", c.Name, p, c)
		require.LessOrEqual(t, c.Value, 1.0, "%s of %s: %+v", c.Name, p, c)
		require.InDelta(t, c.Weight*c.Value, c.Contribution, 1e-12, "%s of %s", c.Name, p)
		sum += c.Contribution
	}
	require.InDelta(t, score, sum, 1e-9, "contributions of %s: %+v", p, e.Components)
	require.InDelta(t, score, e.Score, 1e-9, "explained score of %s", p)
	require.GreaterOrEqual(t, score, 0.0, p)
	require.LessOrEqual(t, score, 1.0, p)
	require.Equal(t, component(t, e, scoring.ComponentReliability).Value, e.Reliability)
}

func TestExplanationsSumToScore(t *testing.T) {
	params := map[string]scoring.Params{"defaults": scoring.DefaultParams()}
	p := scoring.DefaultParams()
	p.LatencyWeight, p.ReliabilityWeight, p.FreshnessWeight, p.PenaltyWeight = 0.1, 0.6, 0.05, 0.25
	p.RTTAlpha, p.RelayedFactor, p.PriorFailures, p.FreshFor = 0.9, 0, 0, 0
	params["skewed"] = p
	for name, p := range params {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(name))))
			b, mock := newMockBook(t, p)
			ids := testIDs(40, 2)
			for round := range 20 {
				randomHistory(b, mock, ids, rng, 150, historyOpts{transient: true})
				for _, id := range ids {
					requireExplained(t, b, id)
				}
				if round%5 == 0 {
					mock.Add(randDur(rng, 0, 2*time.Hour))
				}
			}
		})
	}
}

func TestUnknownPeerGetsPriorScore(t *testing.T) {
	b, _ := newMockBook(t, scoring.DefaultParams())
	id := testIDs(1, 3)[0]
	// Latency as at the reference (0.5), reliability 3/4, unheard 0.5, no
	// penalty.
	want := 0.35*0.5 + 0.35*0.75 + 0.1*0.5 + 0.2*1
	require.InDelta(t, want, b.Score(id), 1e-12)
	require.Zero(t, b.Len(), "scoring an unknown peer must not track it")
	requireExplained(t, b, id)
}

func TestLowerRTTScoresHigher(t *testing.T) {
	cases := []struct{ fast, slow time.Duration }{
		{time.Millisecond, 2 * time.Millisecond},
		{10 * time.Millisecond, 50 * time.Millisecond},
		{49 * time.Millisecond, 51 * time.Millisecond},
		{200 * time.Millisecond, 2 * time.Second},
		{time.Second, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.fast.String()+"<"+tc.slow.String(), func(t *testing.T) {
			b, _ := newMockBook(t, scoring.DefaultParams())
			ids := testIDs(2, 4)
			fast, slow := ids[1], ids[0] // the slow one wins ties on ID
			for range 5 {
				b.ReportRequest(fast, testProto, tc.fast, scoring.Success)
				b.ReportRequest(slow, testProto, tc.slow, scoring.Success)
			}
			require.Greater(t, b.Score(fast), b.Score(slow))
			ref := float64(b.Params().ReferenceRTT)
			for id, rtt := range map[peer.ID]time.Duration{fast: tc.fast, slow: tc.slow} {
				lat := component(t, b.Explain(id), scoring.ComponentLatency)
				require.InDelta(t, ref/(ref+float64(rtt)), lat.Value, 1e-12)
				require.Equal(t, 5, lat.Samples)
			}
			r := b.Rank([]peer.ID{slow, fast})
			require.Equal(t, []peer.ID{fast, slow}, []peer.ID{r[0].Peer, r[1].Peer})
		})
	}
}

func TestRTTEWMAFollowsAlpha(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		alpha   float64
		samples []time.Duration
	}{
		{0.3, []time.Duration{100 * ms, 10 * ms, 10 * ms, 10 * ms, 300 * ms}},
		{1, []time.Duration{100 * ms, 10 * ms, 70 * ms}},
		{0.05, []time.Duration{20 * ms, 200 * ms, 200 * ms, 200 * ms}},
		{0.5, []time.Duration{7 * ms, 0, -ms, 9 * ms}}, // non-positive RTTs are ignored
	}
	for _, tc := range cases {
		p := scoring.DefaultParams()
		p.RTTAlpha = tc.alpha
		b, _ := newMockBook(t, p)
		id := testIDs(1, 5)[0]
		var want float64
		n := 0
		for i, rtt := range tc.samples {
			if i%2 == 0 {
				b.ObserveRTT(id, rtt)
			} else {
				b.ReportRequest(id, testProto, rtt, scoring.Success)
			}
			if rtt <= 0 {
				continue
			}
			if n == 0 {
				want = float64(rtt)
			} else {
				want = tc.alpha*float64(rtt) + (1-tc.alpha)*want
			}
			n++
			e := b.Explain(id)
			require.InDelta(t, want, float64(e.SmoothedRTT), float64(n), "alpha %g after %v", tc.alpha, tc.samples[:i+1])
			require.Equal(t, n, component(t, e, scoring.ComponentLatency).Samples)
		}
	}
}

func TestRelayedHalvesLatency(t *testing.T) {
	b, _ := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(2, 6)
	for _, id := range ids {
		b.ReportRequest(id, testProto, 25*time.Millisecond, scoring.Success)
	}
	direct := component(t, b.Explain(ids[0]), scoring.ComponentLatency).Value
	require.InDelta(t, 50.0/75, direct, 1e-12)

	b.SetRelayed(ids[0], true)
	e := b.Explain(ids[0])
	require.InDelta(t, direct*0.5, component(t, e, scoring.ComponentLatency).Value, 1e-12)
	require.Contains(t, component(t, e, scoring.ComponentLatency).Detail, "relayed")
	require.InDelta(t, b.Score(ids[1])-0.35*direct*0.5, b.Score(ids[0]), 1e-12)

	b.SetRelayed(ids[0], false)
	require.InDelta(t, b.Score(ids[1]), b.Score(ids[0]), 1e-12)
}

// ranksLast reports whether p is last in r with a score below every other.
func ranksLast(r []scoring.Ranked, p peer.ID) bool {
	last := r[len(r)-1]
	return last.Peer == p && last.Score < r[len(r)-2].Score
}

func TestFailingPeerRanksBelowHealthyThenRecovers(t *testing.T) {
	b, mock := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(10, 7)
	// The failing peer has the lowest ID, so it ranks first on a tie.
	bad, healthy := ids[0], ids[1:]
	const rtt = 20 * time.Millisecond
	for _, id := range ids {
		b.Connected(id)
	}
	for range 10 {
		for _, id := range ids {
			b.ReportRequest(id, testProto, rtt, scoring.Success)
		}
		mock.Add(time.Second)
	}
	require.Equal(t, bad, b.Rank(ids)[0].Peer)

	// It fails every other request, one request a second. The healthy
	// peers answer a request whenever it does, so that only its failures
	// set it apart: ignored failures would leave it first on the tie.
	took := 0
	for i := 1; i <= 20; i++ {
		o := scoring.Success
		if i%2 == 1 {
			o = scoring.Failure
		}
		b.ReportRequest(bad, testProto, rtt, o)
		for _, id := range healthy {
			if o == scoring.Success {
				b.ReportRequest(id, testProto, rtt, scoring.Success)
			}
		}
		mock.Add(time.Second)
		below := ranksLast(b.Rank(ids), bad)
		if took == 0 && below {
			took = i
		}
		require.False(t, took != 0 && !below, "failing peer climbed back above a healthy one at request %d", i)
	}
	require.NotZero(t, took, "a peer failing every other request still ranks above a healthy one after 20 requests")
	t.Logf("failing peer ranked below every healthy peer after %d of its requests", took)

	// It recovers: only successes, one request a minute for everyone.
	decide(b, mock)
	prev := b.Score(bad)
	require.Greater(t, b.Score(healthy[0])-prev, 0.02, "the failures must cost more than the tolerance")
	close := time.Duration(0)
	for step := 1; step <= 180; step++ {
		mock.Add(time.Minute)
		for _, id := range ids {
			b.ReportRequest(id, testProto, rtt, scoring.Success)
		}
		s := b.Score(bad)
		require.GreaterOrEqual(t, s, prev-1e-12, "score fell while recovering, minute %d", step)
		prev = s
		if close == 0 && b.Score(healthy[0])-s <= 0.02 {
			close = time.Duration(step) * time.Minute
		}
	}
	for _, id := range healthy {
		require.InDelta(t, b.Score(id), prev, 0.02, "recovered peer against %s", id)
	}
	t.Logf("recovered to within 0.02 of the healthy peers after %s", close)
	// Forgiven as the failures decay (half-life 10 min), not merely
	// outnumbered by new successes, which would take hours.
	require.NotZero(t, close)
	require.LessOrEqual(t, close, 6*b.Params().ReliabilityHalfLife)
}

func TestReliabilityDecaysWithHalfLife(t *testing.T) {
	hl := scoring.DefaultParams().ReliabilityHalfLife
	cases := []struct {
		name         string
		succ, fail   int
		after        time.Duration
		wantSucc     float64 // decayed counts at 'after'
		wantFailures float64
	}{
		{"failures halve", 0, 4, hl, 0, 2},
		{"both halve", 8, 4, hl, 4, 2},
		{"two half-lives", 8, 8, 2 * hl, 2, 2},
		{"a day", 100, 100, 24 * time.Hour, 100 * math.Exp2(-144), 100 * math.Exp2(-144)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, mock := newMockBook(t, scoring.DefaultParams())
			id := testIDs(1, 19)[0]
			for range tc.succ {
				b.ReportRequest(id, testProto, time.Millisecond, scoring.Success)
			}
			for range tc.fail {
				b.ReportRequest(id, testProto, 0, scoring.Failure)
			}
			// Decide the failures now: they count from when they happened.
			decide(b, mock)
			b.Score(id)
			mock.Add(tc.after - b.Params().LocalFaultWindow)
			want := (tc.wantSucc + 3) / (tc.wantSucc + tc.wantFailures + 4)
			rel := component(t, b.Explain(id), scoring.ComponentReliability)
			require.InDelta(t, want, rel.Value, 1e-9, rel.Detail)
			require.Equal(t, tc.succ+tc.fail, rel.Samples)
		})
	}
}

// outageBook returns a book with n connected peers, each with ten answered
// requests of a distinct RTT, so their order is strict.
func outageBook(t *testing.T, n int) (*scoring.Book, *clock.Mock, []peer.ID) {
	b, mock := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(n, 8)
	for _, id := range ids {
		b.Connected(id)
	}
	for range 10 {
		for i, id := range ids {
			b.ReportRequest(id, testProto, time.Duration(i+1)*5*time.Millisecond, scoring.Success)
		}
		mock.Add(time.Second)
	}
	return b, mock, ids
}

func scoresOf(b *scoring.Book, ids []peer.ID) map[peer.ID]float64 {
	m := make(map[peer.ID]float64, len(ids))
	for _, id := range ids {
		m[id] = b.Score(id)
	}
	return m
}

func rankOrder(b *scoring.Book, ids []peer.ID) []peer.ID {
	var order []peer.ID
	for _, r := range b.Rank(ids) {
		order = append(order, r.Peer)
	}
	return order
}

func TestLocalOutage(t *testing.T) {
	cases := []struct {
		name      string
		failing   int  // the first failing peers of 20 fail once each
		wantLocal bool // dropped as a local fault
	}{
		{"all 20 fail in one round", 20, true},
		{"15 of 20 fail in one round", 15, true},
		{"2 of 20 fail", 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, mock, ids := outageBook(t, 20)
			before, order := scoresOf(b, ids), rankOrder(b, ids)
			for _, id := range ids[:tc.failing] {
				b.ReportRequest(id, scoring.PingProto, 0, scoring.Timeout)
				mock.Add(40 * time.Millisecond) // all within one second
			}
			mock.Add(b.Params().LocalFaultWindow + time.Second)
			after := scoresOf(b, ids)
			for i, id := range ids {
				if tc.wantLocal || i >= tc.failing {
					require.InDelta(t, before[id], after[id], 0.01, "peer %d", i)
				} else {
					require.Less(t, after[id], before[id]-0.015, "peer %d failed alone: must lose score", i)
				}
			}
			if tc.wantLocal {
				require.Equal(t, tc.failing, b.LocalFaults())
				require.Equal(t, order, rankOrder(b, ids))
			} else {
				require.Zero(t, b.LocalFaults())
			}
		})
	}

	t.Run("one peer failing repeatedly alone", func(t *testing.T) {
		b, mock, ids := outageBook(t, 20)
		before := scoresOf(b, ids)
		for range 10 {
			b.ReportRequest(ids[0], testProto, 0, scoring.Failure)
			mock.Add(100 * time.Millisecond)
		}
		decide(b, mock)
		require.Zero(t, b.LocalFaults())
		require.Less(t, b.Score(ids[0]), before[ids[0]]-0.1)
		require.GreaterOrEqual(t, slices.Index(rankOrder(b, ids), ids[0]), 5,
			"the fastest peer, failing alone, must fall well down the ranking")
		for _, id := range ids[1:] {
			require.InDelta(t, before[id], b.Score(id), 0.01)
		}
	})
}

// TestLocalFaultAtThreshold: LocalFaultMinPeers and LocalFaultFraction
// are documented as "at least": exactly that many failing peers is a
// local fault.
func TestLocalFaultAtThreshold(t *testing.T) {
	cases := []struct {
		name             string
		connected, fails int
	}{
		{"exactly the fraction: 10 of 20", 20, 10},
		{"exactly min peers: 3 of 4", 4, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, mock, ids := outageBook(t, tc.connected)
			before := scoresOf(b, ids)
			for _, id := range ids[:tc.fails] {
				b.ReportRequest(id, scoring.PingProto, 0, scoring.Timeout)
				mock.Add(40 * time.Millisecond)
			}
			mock.Add(b.Params().LocalFaultWindow + time.Second)
			require.Equal(t, tc.fails, b.LocalFaults())
			for i, id := range ids {
				require.InDelta(t, before[id], b.Score(id), 0.01, "peer %d", i)
			}
		})
	}
}

func TestPenalize(t *testing.T) {
	hl := scoring.DefaultParams().PenaltyHalfLife
	t.Run("one peer only, decaying", func(t *testing.T) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		ids := testIDs(5, 9)
		for _, id := range ids {
			b.ReportRequest(id, testProto, 10*time.Millisecond, scoring.Success)
		}
		before := scoresOf(b, ids)
		b.Penalize(ids[2], 1)
		for i, id := range ids {
			pen := component(t, b.Explain(id), scoring.ComponentPenalty)
			if i == 2 {
				require.InDelta(t, 0.5, pen.Value, 1e-12)
				require.Equal(t, 1, pen.Samples)
				require.InDelta(t, before[id]-0.2*0.5, b.Score(id), 1e-12)
			} else {
				require.Equal(t, 1.0, pen.Value, "peer %d", i)
				require.Equal(t, before[id], b.Score(id), "peer %d", i)
			}
		}
		for _, want := range []float64{0.5, 0.25, 0.125} {
			mock.Add(hl)
			pen := component(t, b.Explain(ids[2]), scoring.ComponentPenalty)
			require.InDelta(t, 1/(1+want), pen.Value, 1e-12)
		}
		b.Penalize(ids[2], 1) // adds to what is left
		require.InDelta(t, 1/(1+1.125), component(t, b.Explain(ids[2]), scoring.ComponentPenalty).Value, 1e-12)
	})

	t.Run("gossip score", func(t *testing.T) {
		scale := scoring.DefaultParams().GossipScoreScale
		cases := []struct {
			gossip, penalty float64 // penalty Penalize adds first
			want            float64 // penalty component
		}{
			{gossip: 10, want: 1},
			{gossip: 0, want: 1},
			{gossip: -scale, want: 0.5},
			{gossip: -4 * scale, want: 0.2},
			{gossip: -scale, penalty: 1, want: 1.0 / 3},
		}
		for _, tc := range cases {
			b, _ := newMockBook(t, scoring.DefaultParams())
			ids := testIDs(2, 10)
			b.Penalize(ids[0], tc.penalty)
			b.SetGossipScore(ids[0], tc.gossip)
			require.InDelta(t, tc.want, component(t, b.Explain(ids[0]), scoring.ComponentPenalty).Value, 1e-12, "%+v", tc)
			require.Equal(t, 1.0, component(t, b.Explain(ids[1]), scoring.ComponentPenalty).Value)
		}
	})

	t.Run("invalid inputs ignored", func(t *testing.T) {
		b, _ := newMockBook(t, scoring.DefaultParams())
		id := testIDs(1, 11)[0]
		b.Penalize(id, 1)
		b.SetGossipScore(id, -scoring.DefaultParams().GossipScoreScale)
		want := b.Explain(id)
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0} {
			b.Penalize(id, x)
			b.SetGossipScore(id, x*math.Inf(1)) // NaN or ±Inf
		}
		b.SetGossipScore(id, math.NaN())
		got := b.Explain(id)
		require.Equal(t, component(t, want, scoring.ComponentPenalty), component(t, got, scoring.ComponentPenalty))
		require.Equal(t, want.Score, got.Score)
		require.False(t, math.IsNaN(got.Score))
	})
}

func TestFreshness(t *testing.T) {
	cases := []struct {
		name     string
		age      time.Duration // how long ago the announcement was heard
		unheard  bool
		unheardF float64 // UnheardFreshness
		want     float64
	}{
		{name: "never heard", unheard: true, unheardF: 0.5, want: 0.5},
		{name: "never heard, custom", unheard: true, unheardF: 0.2, want: 0.2},
		{name: "just now", age: 0, want: 1},
		{name: "in the future", age: -time.Minute, want: 1},
		{name: "30s", age: 30 * time.Second, want: 1},
		{name: "at FreshFor", age: time.Minute, want: 1},
		{name: "halfway", age: 90 * time.Second, want: 0.5},
		{name: "three quarters", age: 105 * time.Second, want: 0.25},
		{name: "at StaleAfter", age: 2 * time.Minute, want: 0},
		{name: "long ago", age: time.Hour, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scoring.DefaultParams()
			p.UnheardFreshness = tc.unheardF
			b, mock := newMockBook(t, p)
			mock.Add(24 * time.Hour)
			id := testIDs(1, 12)[0]
			if !tc.unheard {
				b.Announced(id, mock.Now().Add(-tc.age))
				b.Announced(id, mock.Now().Add(-tc.age-time.Hour)) // an older one changes nothing
			}
			f := component(t, b.Explain(id), scoring.ComponentFreshness)
			require.InDelta(t, tc.want, f.Value, 1e-12)
			require.Equal(t, map[bool]int{true: 0, false: 1}[tc.unheard], f.Samples)
		})
	}

	t.Run("decays with time", func(t *testing.T) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		id := testIDs(1, 12)[0]
		b.Announced(id, mock.Now())
		prev := 1.0
		for range 30 {
			mock.Add(5 * time.Second)
			f := component(t, b.Explain(id), scoring.ComponentFreshness).Value
			require.LessOrEqual(t, f, prev)
			prev = f
		}
		require.Zero(t, prev)
	})
}

func TestRetention(t *testing.T) {
	ret := scoring.DefaultParams().Retention
	t.Run("forgotten after retention", func(t *testing.T) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		ids := testIDs(2, 13)
		for _, id := range ids {
			b.Connected(id)
			b.ReportRequest(id, testProto, time.Millisecond, scoring.Success)
		}
		prior := b.Score(testIDs(1, 14)[0])
		b.Disconnected(ids[0])
		mock.Add(ret)
		b.Sweep()
		require.Equal(t, 2, b.Len(), "kept for all of Retention")
		require.Equal(t, 1, component(t, b.Explain(ids[0]), scoring.ComponentReliability).Samples)
		mock.Add(time.Second)
		b.Sweep()
		require.Equal(t, 1, b.Len(), "forgotten after Retention")
		require.Equal(t, prior, b.Score(ids[0]), "a forgotten peer scores as new")
		require.NotEqual(t, prior, b.Score(ids[1]), "the connected peer keeps its record")
	})

	t.Run("another disconnect sweeps", func(t *testing.T) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		ids := testIDs(2, 15)
		for _, id := range ids {
			b.Connected(id)
		}
		b.Disconnected(ids[0])
		mock.Add(ret + time.Second)
		b.Disconnected(ids[1])
		require.Equal(t, 1, b.Len())
	})

	t.Run("reconnect keeps a bad record", func(t *testing.T) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		id := testIDs(1, 16)[0]
		b.Connected(id)
		for range 5 {
			b.ReportRequest(id, testProto, 0, scoring.Failure)
			mock.Add(time.Second)
		}
		decide(b, mock)
		bad := b.Score(id)
		b.Disconnected(id)
		mock.Add(ret - time.Minute)
		b.Connected(id)
		rel := component(t, b.Explain(id), scoring.ComponentReliability)
		require.Equal(t, 5, rel.Samples, "the record survives the reconnect")
		require.Less(t, rel.Value, 0.75, "the failures still weigh: reliability below the prior")
		require.Less(t, bad, b.Score(testIDs(1, 99)[0]), "the failures had cost it")
		mock.Add(2 * ret)
		b.Sweep()
		require.Equal(t, 1, b.Len(), "a connected peer is never swept")
		require.Equal(t, 5, component(t, b.Explain(id), scoring.ComponentReliability).Samples)
	})
}

// TestSweepForgetsNeverConnectedPeers: a peer the book only heard about
// (an announcement, a request outcome, a penalty, a GossipSub score) but
// that never connected is forgotten after Retention too, or the book would
// grow with every peer ever mentioned.
func TestSweepForgetsNeverConnectedPeers(t *testing.T) {
	b, mock := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(5, 17)
	b.Announced(ids[0], mock.Now())
	b.ReportRequest(ids[1], testProto, time.Millisecond, scoring.Success)
	b.Penalize(ids[2], 1)
	b.SetGossipScore(ids[3], -10)
	b.Connected(ids[4])
	require.Equal(t, 5, b.Len())
	mock.Add(2 * b.Params().Retention)
	b.Sweep()
	require.Equal(t, 1, b.Len(), "peers never connected must not outlive Retention")
}

// TestLocalOutageFlushIsLinear: deciding an outage of n connected peers
// should cost about n times deciding one failure. It runs under the Book's
// mutex, so every Score, Rank and report waits for it.
func TestLocalOutageFlushIsLinear(t *testing.T) {
	const n = 1000
	b, mock := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(n, 18)
	for _, id := range ids {
		b.Connected(id)
		b.ReportRequest(id, scoring.PingProto, 0, scoring.Timeout)
	}
	decide(b, mock)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.Equal(t, n, b.LocalFaults())
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(n*2000),
		"bytes allocated deciding a %d-peer outage", n)
}
