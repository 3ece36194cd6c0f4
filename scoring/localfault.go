package scoring

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// flushLocked decides the failures whose hold (LocalFaultWindow) is over:
// each counts against its peer unless it belongs to a burst, many peers
// failing within a window either side of it, which is our own fault (our
// link, our overload) rather than theirs. Failures of one burst are
// decided alike: each sees the others in its window.
func (b *Book) flushLocked(now time.Time) {
	w := b.params.LocalFaultWindow
	for len(b.pending) > 0 && !now.Before(b.pending[0].at.Add(w)) {
		f := b.pending[0]
		b.pending = b.pending[1:]
		if b.burstLocked(f.at) {
			b.localFaults++
		} else if s := b.peers[f.peer]; s != nil {
			b.addOutcome(s, false, f.at, now)
		}
		b.recent = append(b.recent, f)
	}
	// A decided failure matters to pending ones within a window of it.
	horizon := now.Add(-3 * w)
	i := 0
	for i < len(b.recent) && b.recent[i].at.Before(horizon) {
		i++
	}
	b.recent = b.recent[i:]
	if len(b.pending) == 0 {
		b.pending = nil // let the backing array go after a burst
	}
}

// burstLocked reports whether the failures within LocalFaultWindow of t
// hit at least LocalFaultMinPeers distinct peers and LocalFaultFraction
// of the connected ones.
func (b *Book) burstLocked(t time.Time) bool {
	w := b.params.LocalFaultWindow
	from, to := t.Add(-w), t.Add(w)
	distinct := map[peer.ID]struct{}{}
	for _, list := range [][]failure{b.recent, b.pending} {
		for _, f := range list {
			if !f.at.Before(from) && !f.at.After(to) {
				distinct[f.peer] = struct{}{}
			}
		}
	}
	if len(distinct) < b.params.LocalFaultMinPeers {
		return false
	}
	connected := 0
	for _, s := range b.peers {
		if s.connected {
			connected++
		}
	}
	connected = max(connected, len(distinct))
	return float64(len(distinct)) >= b.params.LocalFaultFraction*float64(connected)
}
