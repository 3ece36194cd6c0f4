package scoring

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Component names.
const (
	ComponentLatency     = "latency"
	ComponentReliability = "reliability"
	ComponentFreshness   = "freshness"
	ComponentPenalty     = "penalty"
)

// Component is one term of a score.
type Component struct {
	Name string
	// Value is the component in [0, 1]; Contribution is Weight·Value.
	Weight, Value, Contribution float64
	// Samples is how many samples it rests on; Last when the newest came
	// (zero if none).
	Samples int
	Last    time.Time
	// Detail says what the value was computed from.
	Detail string
}

// Explanation breaks a score into its components; their contributions add
// up to Score.
type Explanation struct {
	Peer       peer.ID
	Score      float64
	Components []Component
	// SmoothedRTT is the smoothed RTT (0 without samples); Reliability the
	// reliability component.
	SmoothedRTT time.Duration
	Reliability float64
}

// Score is p's score in [0, 1]. A peer without any sample gets the priors'
// score.
func (b *Book) Score(p peer.ID) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	b.flushLocked(now)
	return b.scoreLocked(b.peers[p], now)
}

// Explain breaks p's score down.
func (b *Book) Explain(p peer.ID) Explanation {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	b.flushLocked(now)
	s := b.peers[p]
	if s == nil {
		s = &peerState{}
	}
	e := Explanation{Peer: p, SmoothedRTT: s.rtt}
	lat, rel, fresh, pen := b.components(s, now)
	succ, fail := b.counts(s, now)
	pr := b.params
	gossip := "no GossipSub score"
	if s.hasGossip {
		gossip = fmt.Sprintf("GossipSub score %.2f", s.gossip)
	}
	e.Components = []Component{
		{Name: ComponentLatency, Weight: pr.LatencyWeight, Value: lat, Samples: s.rttSamples, Last: s.lastRTT,
			Detail: latencyDetail(s, pr.ReferenceRTT)},
		{Name: ComponentReliability, Weight: pr.ReliabilityWeight, Value: rel, Samples: s.requests, Last: s.lastRequest,
			Detail: fmt.Sprintf("%.2f successes, %.2f failures (decayed, half-life %s) plus a prior of %g and %g",
				succ, fail, pr.ReliabilityHalfLife, pr.PriorSuccesses, pr.PriorFailures)},
		{Name: ComponentFreshness, Weight: pr.FreshnessWeight, Value: fresh, Last: s.announced, Samples: boolInt(!s.announced.IsZero()),
			Detail: freshnessDetail(s, now)},
		{Name: ComponentPenalty, Weight: pr.PenaltyWeight, Value: pen, Samples: s.penalties, Last: s.lastPenalty,
			Detail: fmt.Sprintf("penalty %.2f (half-life %s), %s", b.penaltyAt(s, now), pr.PenaltyHalfLife, gossip)},
	}
	for i := range e.Components {
		c := &e.Components[i]
		c.Contribution = c.Weight * c.Value
		e.Score += c.Contribution
	}
	e.Reliability = rel
	return e
}

func latencyDetail(s *peerState, ref time.Duration) string {
	if s.rttSamples == 0 {
		return fmt.Sprintf("no RTT yet: counted as the reference %s", ref)
	}
	d := fmt.Sprintf("smoothed RTT %s against a reference of %s", s.rtt.Round(10*time.Microsecond), ref)
	if s.relayed {
		d += ", relayed"
	}
	return d
}

func freshnessDetail(s *peerState, now time.Time) string {
	if s.announced.IsZero() {
		return "never heard announcing"
	}
	return fmt.Sprintf("last announcement heard %s ago", now.Sub(s.announced).Round(time.Second))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scoreLocked computes s's score at now; a nil s is a peer without
// samples.
func (b *Book) scoreLocked(s *peerState, now time.Time) float64 {
	if s == nil {
		s = &peerState{}
	}
	lat, rel, fresh, pen := b.components(s, now)
	p := b.params
	return p.LatencyWeight*lat + p.ReliabilityWeight*rel + p.FreshnessWeight*fresh + p.PenaltyWeight*pen
}

// components returns the four component values of s at now.
func (b *Book) components(s *peerState, now time.Time) (lat, rel, fresh, pen float64) {
	p := b.params
	ref, rtt := float64(p.ReferenceRTT), float64(p.ReferenceRTT)
	if s.rttSamples > 0 {
		rtt = float64(s.rtt)
	}
	lat = ref / (ref + rtt) // in floats: a huge RTT must not wrap around
	if s.relayed {
		lat *= p.RelayedFactor
	}
	succ, fail := b.counts(s, now)
	rel = (succ + p.PriorSuccesses) / (succ + fail + p.PriorSuccesses + p.PriorFailures)
	switch age := now.Sub(s.announced); {
	case s.announced.IsZero():
		fresh = p.UnheardFreshness
	case age <= p.FreshFor:
		fresh = 1
	case age >= p.StaleAfter:
		fresh = 0
	default:
		fresh = 1 - float64(age-p.FreshFor)/float64(p.StaleAfter-p.FreshFor)
	}
	penalty := b.penaltyAt(s, now)
	if s.hasGossip && s.gossip < 0 {
		penalty += -s.gossip / p.GossipScoreScale
	}
	pen = 1 / (1 + penalty)
	return lat, rel, fresh, pen
}
