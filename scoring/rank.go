package scoring

import (
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Ranked is a candidate with its score.
type Ranked struct {
	Peer  peer.ID
	Score float64
	// Explored is set on a candidate Best placed to try it, not for its
	// score.
	Explored bool
}

// Rank scores the candidates and sorts them best first (ties by node ID,
// so the order is stable).
func (b *Book) Rank(candidates []peer.ID) []Ranked {
	out := make([]Ranked, len(candidates))
	b.mu.Lock()
	now := b.clk.Now()
	b.flushLocked(now)
	for i, p := range candidates {
		out[i] = Ranked{Peer: p, Score: b.scoreLocked(b.peers[p], now)}
	}
	b.mu.Unlock()
	sortRanked(out)
	return out
}

func sortRanked(rs []Ranked) {
	slices.SortFunc(rs, func(x, y Ranked) int {
		switch {
		case x.Score > y.Score:
			return -1
		case x.Score < y.Score:
			return 1
		}
		return strings.Compare(string(x.Peer), string(y.Peer))
	})
}

// Best returns up to n of the candidates that pass filter (nil passes
// all), best first. Every ExploreEvery-th call, if a candidate without
// any sample passed the filter but did not make the cut, it takes the last
// place (the one explored longest ago first), so a new peer is tried
// within a bounded number of selections instead of never.
func (b *Book) Best(candidates []peer.ID, n int, filter func(peer.ID) bool) []Ranked {
	if n <= 0 {
		return nil
	}
	kept := candidates
	if filter != nil {
		kept = make([]peer.ID, 0, len(candidates))
		for _, p := range candidates {
			if filter(p) {
				kept = append(kept, p)
			}
		}
	}
	ranked := b.Rank(kept)
	top := ranked[:min(n, len(ranked))]

	b.mu.Lock()
	defer b.mu.Unlock()
	b.selections++
	every := b.params.ExploreEvery
	if every == 0 || b.selections%every != 0 || len(ranked) <= n {
		return top
	}
	var pick *Ranked
	var pickedAt time.Time
	for i := n; i < len(ranked); i++ {
		s := b.peers[ranked[i].Peer]
		if s != nil && (s.rttSamples > 0 || s.requests > 0) {
			continue
		}
		var at time.Time
		if s != nil {
			at = s.explored
		}
		if pick == nil || at.Before(pickedAt) {
			pick, pickedAt = &ranked[i], at
		}
	}
	if pick == nil {
		return top
	}
	b.stateLocked(pick.Peer).explored = b.clk.Now()
	out := slices.Clone(top)
	out[len(out)-1] = Ranked{Peer: pick.Peer, Score: pick.Score, Explored: true}
	return out
}
