package scoring

import (
	"math"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Outcome is how a request to a peer ended.
type Outcome int

// Outcomes.
const (
	Success Outcome = iota
	Failure
	Timeout
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Timeout:
		return "timeout"
	}
	return "unknown"
}

// Reporter is what a protocol needs to tell scoring how its requests went:
// every request's RTT (0 if unknown) and outcome.
type Reporter interface {
	ReportRequest(p peer.ID, proto string, rtt time.Duration, o Outcome)
}

// Book holds every peer's samples and scores them. It is safe for
// concurrent use; all its state is guarded by one mutex, never held across
// I/O.
type Book struct {
	params Params
	clk    clock.Clock

	mu    sync.Mutex
	peers map[peer.ID]*peerState
	// pending failures wait LocalFaultWindow before they count, in time
	// order; decided ones stay in recent for the windows of later ones.
	pending, recent []failure
	localFaults     int
	selections      int
	// connected counts the peers marked Connected, for the local-fault
	// fraction.
	connected int
}

type failure struct {
	peer peer.ID
	at   time.Time
}

// peerState is one peer's record. Decayed quantities are stored as their
// value at a time (countsAt, penaltyAt) and decayed on reading.
type peerState struct {
	rtt        time.Duration // smoothed
	rttSamples int
	lastRTT    time.Time

	succ, fail  float64 // decayed counts, as of countsAt
	countsAt    time.Time
	requests    int // raw count, for explanations
	lastRequest time.Time

	announced time.Time

	penalty     float64 // as of penaltyAt
	penaltyAt   time.Time
	penalties   int
	lastPenalty time.Time
	gossip      float64
	hasGossip   bool

	relayed        bool
	connected      bool
	disconnectedAt time.Time
	explored       time.Time
}

// NewBook returns an empty book. clk may be nil (the real clock).
func NewBook(p Params, clk clock.Clock) (*Book, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.New()
	}
	return &Book{params: p, clk: clk, peers: map[peer.ID]*peerState{}}, nil
}

// Params returns the parameters the book scores with.
func (b *Book) Params() Params { return b.params }

// stateLocked returns p's record, creating it. A new record counts as
// disconnected from now until Connected, so a peer that was only ever
// penalised or reported (never connected) is forgotten after Retention.
func (b *Book) stateLocked(p peer.ID) *peerState {
	s := b.peers[p]
	if s == nil {
		s = &peerState{disconnectedAt: b.clk.Now()}
		b.peers[p] = s
	}
	return s
}

// decay is 2^(-dt/halfLife), 1 for dt <= 0.
func decay(dt, halfLife time.Duration) float64 {
	if dt <= 0 {
		return 1
	}
	return math.Exp2(-float64(dt) / float64(halfLife))
}

// countsAt returns s's decayed success and failure counts at now.
func (b *Book) counts(s *peerState, now time.Time) (succ, fail float64) {
	d := decay(now.Sub(s.countsAt), b.params.ReliabilityHalfLife)
	return s.succ * d, s.fail * d
}

// addOutcome adds one outcome that happened at 'at' to s's counts, kept as
// of now.
func (b *Book) addOutcome(s *peerState, ok bool, at, now time.Time) {
	s.succ, s.fail = b.counts(s, now)
	s.countsAt = now
	w := decay(now.Sub(at), b.params.ReliabilityHalfLife)
	if ok {
		s.succ += w
	} else {
		s.fail += w
	}
	s.requests++
	if at.After(s.lastRequest) {
		s.lastRequest = at
	}
}

func (b *Book) addRTT(s *peerState, rtt time.Duration, now time.Time) {
	if rtt <= 0 {
		return
	}
	if s.rttSamples == 0 {
		s.rtt = rtt
	} else {
		a := b.params.RTTAlpha
		s.rtt = time.Duration(a*float64(rtt) + (1-a)*float64(s.rtt))
	}
	s.rttSamples++
	s.lastRTT = now
}

// ObserveRTT records a round-trip time that is not a request's (the
// handshake's, say).
func (b *Book) ObserveRTT(p peer.ID, rtt time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addRTT(b.stateLocked(p), rtt, b.clk.Now())
}

// ReportRequest records a request's RTT (if known) and outcome. A failure
// or timeout counts only after LocalFaultWindow, and not at all if most
// peers failed with it (a local fault).
func (b *Book) ReportRequest(p peer.ID, _ string, rtt time.Duration, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	b.flushLocked(now)
	s := b.stateLocked(p)
	if o == Success {
		b.addRTT(s, rtt, now)
		b.addOutcome(s, true, now, now)
		return
	}
	b.pending = append(b.pending, failure{peer: p, at: now})
}

// Announced records that p's announcement was heard at 'at'.
func (b *Book) Announced(p peer.ID, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stateLocked(p)
	if at.After(s.announced) {
		s.announced = at
	}
}

// Penalize adds misbehaviour (an invalid announcement, a gate violation, a
// failed proof, bad data): amount units of penalty, decaying with
// PenaltyHalfLife. It concerns p alone.
func (b *Book) Penalize(p peer.ID, amount float64) {
	if amount <= 0 || math.IsNaN(amount) || math.IsInf(amount, 0) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	s := b.stateLocked(p)
	s.penalty = b.penaltyAt(s, now) + amount
	s.penaltyAt = now
	s.penalties++
	s.lastPenalty = now
}

func (b *Book) penaltyAt(s *peerState, now time.Time) float64 {
	return s.penalty * decay(now.Sub(s.penaltyAt), b.params.PenaltyHalfLife)
}

// SetGossipScore records p's GossipSub score as pubsub last computed it.
func (b *Book) SetGossipScore(p peer.ID, score float64) {
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stateLocked(p)
	s.gossip, s.hasGossip = score, true
}

// SetRelayed records whether p is reached through a relay.
func (b *Book) SetRelayed(p peer.ID, relayed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stateLocked(p).relayed = relayed
}

// Connected marks p connected (it counts towards the local-fault check).
func (b *Book) Connected(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stateLocked(p)
	if !s.connected {
		b.connected++
	}
	s.connected, s.disconnectedAt = true, time.Time{}
}

// Disconnected marks p gone; its history is kept for Retention.
func (b *Book) Disconnected(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	if s := b.peers[p]; s != nil && s.connected {
		s.connected, s.disconnectedAt = false, now
		b.connected--
	}
	b.sweepLocked(now)
}

// sweepLocked forgets peers disconnected for longer than Retention.
func (b *Book) sweepLocked(now time.Time) {
	for p, s := range b.peers {
		if !s.connected && !s.disconnectedAt.IsZero() && now.Sub(s.disconnectedAt) > b.params.Retention {
			delete(b.peers, p)
		}
	}
}

// Sweep forgets the peers whose retention ran out.
func (b *Book) Sweep() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(b.clk.Now())
}

// Len is how many peers the book tracks.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}

// LocalFaults is how many failures were dropped as local faults.
func (b *Book) LocalFaults() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked(b.clk.Now())
	return b.localFaults
}
