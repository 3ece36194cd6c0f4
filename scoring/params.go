package scoring

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Params tunes the score. A peer's score is
//
//	LatencyWeight·latency + ReliabilityWeight·reliability
//	  + FreshnessWeight·freshness + PenaltyWeight·(no penalty)
//
// with every component in [0, 1] and the weights summing to 1, so the score
// is in [0, 1] and an explanation's contributions add up to it.
type Params struct {
	// Weights of the four components; each in [0, 1], together 1.
	// Defaults 0.35, 0.35, 0.1, 0.2: speed and dependability decide, a
	// misbehaving peer loses up to a fifth, a silent one a tenth.
	LatencyWeight, ReliabilityWeight, FreshnessWeight, PenaltyWeight float64

	// ReferenceRTT scales latency: the component is ref/(ref+rtt), 1 for
	// an instant answer, 0.5 at ReferenceRTT, 0.1 at nine times it. A
	// smaller reference separates fast peers more sharply. Default 50 ms.
	ReferenceRTT time.Duration
	// RTTAlpha is the weight of a new RTT sample in the smoothed RTT
	// (an exponentially weighted moving average). Higher follows changes
	// faster and noise more. Default 0.3.
	RTTAlpha float64
	// RelayedFactor multiplies the latency component of a peer reached
	// through a relay: the path is slower and less dependable than its RTT
	// alone says. Default 0.5.
	RelayedFactor float64

	// ReliabilityHalfLife is how long a request's outcome takes to count
	// half as much: shorter forgives and forgets faster. Default 10 min.
	ReliabilityHalfLife time.Duration
	// PriorSuccesses and PriorFailures are the pseudo-counts every peer
	// starts with: reliability is (successes+prior successes) / (all +
	// priors). The defaults, 3 and 1, give a new peer 0.75, below a
	// proven peer and above a failing one, so it is tried, and a single
	// early failure does not condemn it.
	PriorSuccesses, PriorFailures float64

	// FreshFor and StaleAfter shape freshness: 1 while the peer's last
	// announcement is younger than FreshFor, falling linearly to 0 at
	// StaleAfter. A peer never heard announcing gets UnheardFreshness.
	// Defaults 60 s, 120 s (discovery's stale threshold), 0.5.
	FreshFor, StaleAfter time.Duration
	UnheardFreshness     float64

	// PenaltyHalfLife is how fast misbehaviour is forgiven: the penalty
	// halves over it. The component is 1/(1+penalty), so one unit of
	// penalty halves it. Default 10 min.
	PenaltyHalfLife time.Duration
	// GossipScoreScale turns a negative GossipSub score into penalty:
	// penalty += -score/GossipScoreScale (pubsub's graylist threshold here
	// is -80). Default 20.
	GossipScoreScale float64

	// LocalFaultWindow, LocalFaultFraction and LocalFaultMinPeers keep a
	// local fault (our own link down: every peer failing at once) from
	// sinking every score. A failure is held for LocalFaultWindow; if
	// within a window either side of it at least LocalFaultFraction of the
	// connected peers, and at least LocalFaultMinPeers, failed too, all
	// those failures are dropped as ours. Defaults 2 s, 0.5, 3.
	LocalFaultWindow   time.Duration
	LocalFaultFraction float64
	LocalFaultMinPeers int

	// Retention is how long a disconnected peer's history is kept, so a
	// reconnect does not wipe a bad record. Default 1 h.
	Retention time.Duration

	// ExploreEvery: every ExploreEvery-th selection (Best) gives its last
	// place to a candidate without samples, if any, so new peers are tried
	// rather than never chosen. 0 turns exploring off. Default 4.
	ExploreEvery int
}

// DefaultParams returns the documented defaults.
func DefaultParams() Params {
	return Params{
		LatencyWeight: 0.35, ReliabilityWeight: 0.35, FreshnessWeight: 0.1, PenaltyWeight: 0.2,
		ReferenceRTT: 50 * time.Millisecond, RTTAlpha: 0.3, RelayedFactor: 0.5,
		ReliabilityHalfLife: 10 * time.Minute, PriorSuccesses: 3, PriorFailures: 1,
		FreshFor: time.Minute, StaleAfter: 2 * time.Minute, UnheardFreshness: 0.5,
		PenaltyHalfLife: 10 * time.Minute, GossipScoreScale: 20,
		LocalFaultWindow: 2 * time.Second, LocalFaultFraction: 0.5, LocalFaultMinPeers: 3,
		Retention: time.Hour, ExploreEvery: 4,
	}
}

// ErrBadParams is wrapped by every Validate error.
var ErrBadParams = errors.New("bad scoring parameters")

func unit(x float64) bool { return x >= 0 && x <= 1 && !math.IsNaN(x) }

// Validate checks every field and the cross-field rules.
func (p Params) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadParams, fmt.Sprintf(format, args...))
	}
	w := []float64{p.LatencyWeight, p.ReliabilityWeight, p.FreshnessWeight, p.PenaltyWeight}
	sum := 0.0
	for _, x := range w {
		if !unit(x) {
			return bad("weights must be in [0, 1], got %v", w)
		}
		sum += x
	}
	for _, x := range []float64{p.RTTAlpha, p.RelayedFactor, p.PriorSuccesses, p.PriorFailures,
		p.UnheardFreshness, p.GossipScoreScale, p.LocalFaultFraction} {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return bad("every number must be finite: alpha %g, relayed %g, priors %g/%g, unheard %g, gossip scale %g, fault fraction %g",
				p.RTTAlpha, p.RelayedFactor, p.PriorSuccesses, p.PriorFailures, p.UnheardFreshness, p.GossipScoreScale, p.LocalFaultFraction)
		}
	}
	switch {
	case math.Abs(sum-1) > 1e-9:
		return bad("weights must sum to 1, got %v (sum %g)", w, sum)
	case p.ReferenceRTT <= 0:
		return bad("reference RTT %s: want a positive duration", p.ReferenceRTT)
	case p.RTTAlpha <= 0 || p.RTTAlpha > 1:
		return bad("RTT alpha %g: want (0, 1]", p.RTTAlpha)
	case !unit(p.RelayedFactor):
		return bad("relayed factor %g: want [0, 1]", p.RelayedFactor)
	case p.ReliabilityHalfLife <= 0 || p.PenaltyHalfLife <= 0:
		return bad("half-lives %s and %s: want positive durations", p.ReliabilityHalfLife, p.PenaltyHalfLife)
	case p.PriorSuccesses <= 0 || p.PriorFailures < 0:
		return bad("priors %g successes, %g failures: want > 0 and >= 0", p.PriorSuccesses, p.PriorFailures)
	case p.FreshFor < 0 || p.StaleAfter <= p.FreshFor:
		return bad("fresh for %s, stale after %s: want 0 <= fresh < stale", p.FreshFor, p.StaleAfter)
	case !unit(p.UnheardFreshness):
		return bad("unheard freshness %g: want [0, 1]", p.UnheardFreshness)
	case p.GossipScoreScale <= 0:
		return bad("gossip score scale %g: want > 0", p.GossipScoreScale)
	case p.LocalFaultWindow <= 0 || p.LocalFaultFraction <= 0 || p.LocalFaultFraction > 1 || p.LocalFaultMinPeers < 2:
		return bad("local fault window %s, fraction %g, min peers %d: want > 0, (0, 1], >= 2",
			p.LocalFaultWindow, p.LocalFaultFraction, p.LocalFaultMinPeers)
	case p.Retention <= 0:
		return bad("retention %s: want a positive duration", p.Retention)
	case p.ExploreEvery < 0:
		return bad("explore every %d: want >= 0", p.ExploreEvery)
	}
	return nil
}
