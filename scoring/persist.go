package scoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// savedPeer is one peer's record on disk. Decayed counts are stored with
// the time they are valid at, so a restart decays them on.
type savedPeer struct {
	Peer        peer.ID   `json:"peer"`
	RTTNanos    int64     `json:"rtt_ns,omitempty"`
	RTTSamples  int       `json:"rtt_samples,omitempty"`
	LastRTT     time.Time `json:"last_rtt,omitzero"`
	Successes   float64   `json:"successes,omitempty"`
	Failures    float64   `json:"failures,omitempty"`
	CountsAt    time.Time `json:"counts_at,omitzero"`
	Requests    int       `json:"requests,omitempty"`
	LastRequest time.Time `json:"last_request,omitzero"`
	Announced   time.Time `json:"announced,omitzero"`
	Penalty     float64   `json:"penalty,omitempty"`
	PenaltyAt   time.Time `json:"penalty_at,omitzero"`
	Penalties   int       `json:"penalties,omitempty"`
	LastPenalty time.Time `json:"last_penalty,omitzero"`
}

type savedBook struct {
	Version int         `json:"version"`
	Peers   []savedPeer `json:"peers"`
	// Held are failures still on hold (less than LocalFaultWindow old):
	// they are decided after the restart, with what is known then.
	Held []savedFailure `json:"held,omitempty"`
}

type savedFailure struct {
	Peer peer.ID   `json:"peer"`
	At   time.Time `json:"at"`
}

// maxSavedRTT bounds a restored RTT: more is no RTT a book records.
const maxSavedRTT = time.Hour

// MarshalJSON encodes every peer's history, and the failures still on
// hold, for saving beside the member table.
func (b *Book) MarshalJSON() ([]byte, error) {
	b.mu.Lock()
	now := b.clk.Now()
	b.flushLocked(now)
	out := savedBook{Version: 1, Peers: make([]savedPeer, 0, len(b.peers))}
	for p, s := range b.peers {
		out.Peers = append(out.Peers, savedPeer{
			Peer: p, RTTNanos: int64(s.rtt), RTTSamples: s.rttSamples, LastRTT: s.lastRTT,
			Successes: s.succ, Failures: s.fail, CountsAt: s.countsAt, Requests: s.requests, LastRequest: s.lastRequest,
			Announced: s.announced, Penalty: s.penalty, PenaltyAt: s.penaltyAt, Penalties: s.penalties, LastPenalty: s.lastPenalty,
		})
	}
	for _, f := range b.pending {
		out.Held = append(out.Held, savedFailure{Peer: f.peer, At: f.at})
	}
	b.mu.Unlock()
	return json.Marshal(out)
}

// ErrCorruptScores is wrapped when saved scores cannot be read at all.
var ErrCorruptScores = errors.New("saved scores are corrupt")

// Restore adds the peers of a MarshalJSON output the book does not track
// yet, as disconnected now (their history then lasts Retention unless they
// reconnect). Entries that do not parse are skipped and counted.
func (b *Book) Restore(data []byte) (restored, skipped int, err error) {
	var f struct {
		Version int               `json:"version"`
		Peers   []json.RawMessage `json:"peers"`
		Held    []json.RawMessage `json:"held"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrCorruptScores, err)
	}
	if f.Version != 1 {
		return 0, 0, fmt.Errorf("%w: unknown version %d", ErrCorruptScores, f.Version)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	for _, raw := range f.Peers {
		var sp savedPeer
		if json.Unmarshal(raw, &sp) != nil || sp.Peer.Validate() != nil || !sane(sp) {
			skipped++
			continue
		}
		if _, ok := b.peers[sp.Peer]; ok {
			continue
		}
		b.peers[sp.Peer] = &peerState{
			rtt: time.Duration(sp.RTTNanos), rttSamples: sp.RTTSamples, lastRTT: sp.LastRTT,
			succ: sp.Successes, fail: sp.Failures, countsAt: sp.CountsAt, requests: sp.Requests, lastRequest: sp.LastRequest,
			announced: sp.Announced, penalty: sp.Penalty, penaltyAt: sp.PenaltyAt, penalties: sp.Penalties, lastPenalty: sp.LastPenalty,
			disconnectedAt: now,
		}
		restored++
	}
	for _, raw := range f.Held {
		var sf savedFailure
		if json.Unmarshal(raw, &sf) != nil || sf.Peer.Validate() != nil || sf.At.IsZero() || b.peers[sf.Peer] == nil {
			skipped++
			continue
		}
		b.pending = append(b.pending, failure{peer: sf.Peer, at: sf.At})
	}
	slices.SortStableFunc(b.pending, func(x, y failure) int { return x.at.Compare(y.at) })
	return restored, skipped, nil
}

// sane refuses values no book produces: they would break the score's range.
func sane(sp savedPeer) bool {
	finite := func(xs ...float64) bool {
		for _, x := range xs {
			if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
		return true
	}
	return finite(sp.Successes, sp.Failures, sp.Penalty) && sp.RTTNanos >= 0 && sp.RTTNanos <= int64(maxSavedRTT) && sp.RTTSamples >= 0 &&
		sp.Requests >= 0 && sp.Penalties >= 0 && (sp.RTTSamples == 0) == (sp.RTTNanos == 0)
}
