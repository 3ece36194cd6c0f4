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
//
// The decided failures (recent) and the held ones (pending) form one
// time-ordered sequence; a window slides along it, so deciding F failures
// costs O(F) however many fail together.
func (b *Book) flushLocked(now time.Time) {
	w := b.params.LocalFaultWindow
	due := 0
	for due < len(b.pending) && !now.Before(b.pending[due].at.Add(w)) {
		due++
	}
	if due == 0 {
		return
	}
	seq := make([]failure, 0, len(b.recent)+len(b.pending))
	seq = append(append(seq, b.recent...), b.pending...)
	inWindow := map[peer.ID]int{}
	lo, hi := 0, 0 // seq[lo:hi] is the window of the failure being decided
	for k := range due {
		f := seq[len(b.recent)+k]
		for hi < len(seq) && !seq[hi].at.After(f.at.Add(w)) {
			inWindow[seq[hi].peer]++
			hi++
		}
		for lo < hi && seq[lo].at.Before(f.at.Add(-w)) {
			if inWindow[seq[lo].peer]--; inWindow[seq[lo].peer] == 0 {
				delete(inWindow, seq[lo].peer)
			}
			lo++
		}
		if b.isBurst(len(inWindow)) {
			b.localFaults++
		} else if s := b.peers[f.peer]; s != nil {
			b.addOutcome(s, false, f.at, now)
		}
	}
	b.recent = append(b.recent, b.pending[:due]...)
	b.pending = b.pending[due:]
	if len(b.pending) == 0 {
		b.pending = nil // let the backing array go after a burst
	}
	// A decided failure matters to held ones within a window of it.
	horizon := now.Add(-3 * w)
	i := 0
	for i < len(b.recent) && b.recent[i].at.Before(horizon) {
		i++
	}
	b.recent = append([]failure(nil), b.recent[i:]...)
}

// isBurst reports whether distinct peers failing within one window are a
// local fault: at least LocalFaultMinPeers of them, and at least
// LocalFaultFraction of the connected peers.
func (b *Book) isBurst(distinct int) bool {
	if distinct < b.params.LocalFaultMinPeers {
		return false
	}
	connected := max(b.connected, distinct)
	return float64(distinct) >= b.params.LocalFaultFraction*float64(connected)
}
