package scoring_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/scoring"
)

func TestRankSortsBestFirstStableTies(t *testing.T) {
	b, _ := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(30, 20)
	// Ten RTTs, each shared by two peers; ten peers without samples, all
	// at the prior's score, which falls between the sampled ones.
	for i, id := range ids[:20] {
		b.ReportRequest(id, testProto, time.Duration(1+i/2)*10*time.Millisecond, scoring.Success)
	}
	want := b.Rank(ids)
	require.Len(t, want, len(ids))
	ties := 0
	for i, r := range want {
		require.Equal(t, b.Score(r.Peer), r.Score)
		require.False(t, r.Explored)
		if i == 0 {
			continue
		}
		prev := want[i-1]
		require.GreaterOrEqual(t, prev.Score, r.Score, "position %d", i)
		if prev.Score == r.Score {
			ties++
			require.Less(t, prev.Peer, r.Peer, "ties go by peer ID, position %d", i)
		}
	}
	require.Equal(t, 10+9, ties, "ten pairs and ten unsampled peers tie")
	prior := b.Score(testIDs(1, 99)[0])
	require.Greater(t, want[0].Score, prior)
	require.Less(t, want[len(want)-1].Score, prior)

	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(ids)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		require.Equal(t, want, b.Rank(shuffled), "the order must not depend on the candidates' order")
	}
	require.Empty(t, b.Rank(nil))
}

// sampledBook returns a book whose n peers, best first, have five answered
// requests each at RTTs of 10, 20, ... ms.
func sampledBook(t *testing.T, p scoring.Params, n int, seed uint64) (*scoring.Book, []peer.ID) {
	b, _ := newMockBook(t, p)
	ids := testIDs(n, seed)
	for i, id := range ids {
		b.Connected(id)
		for range 5 {
			b.ReportRequest(id, testProto, time.Duration(i+1)*10*time.Millisecond, scoring.Success)
		}
	}
	return b, ids
}

func peersOf(rs []scoring.Ranked) []peer.ID {
	out := make([]peer.ID, len(rs))
	for i, r := range rs {
		out[i] = r.Peer
	}
	return out
}

func TestBestFilter(t *testing.T) {
	b, ids := sampledBook(t, scoring.DefaultParams(), 10, 21)
	notZeroOrTwo := func(p peer.ID) bool { return p != ids[0] && p != ids[2] }
	none := func(peer.ID) bool { return false }

	cases := []struct {
		name   string
		cands  []peer.ID
		n      int
		filter func(peer.ID) bool
		want   []peer.ID
	}{
		{"top 3", ids, 3, nil, ids[:3]},
		{"filtered top 3", ids, 3, notZeroOrTwo, []peer.ID{ids[1], ids[3], ids[4]}},
		{"more than pass", ids, 20, notZeroOrTwo, append([]peer.ID{ids[1]}, ids[3:]...)},
		{"n 0", ids, 0, nil, nil},
		{"n negative", ids, -1, nil, nil},
		{"none pass", ids, 3, none, []peer.ID{}},
		{"no candidates", nil, 3, nil, []peer.ID{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Repeat past ExploreEvery: with every candidate sampled,
			// nothing is explored.
			for range 2 * scoring.DefaultParams().ExploreEvery {
				got := b.Best(tc.cands, tc.n, tc.filter)
				if tc.want == nil {
					require.Nil(t, got)
					continue
				}
				require.Equal(t, tc.want, peersOf(got))
				for _, r := range got {
					require.False(t, r.Explored)
				}
			}
		})
	}
}

func TestBestExplores(t *testing.T) {
	cases := []struct {
		name      string
		every     int
		unsampled int
		unknown   bool // the new peers are not even in the book
		within    int  // calls by which each must have been explored
	}{
		{"one new peer", 4, 1, false, 4},
		{"one unknown peer", 4, 1, true, 4},
		{"three new peers", 4, 3, false, 12},
		{"three new peers, every 7th", 7, 3, false, 21},
		{"every call", 1, 3, true, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scoring.DefaultParams()
			p.ExploreEvery = tc.every
			b, healthy := sampledBook(t, p, 10, 22)
			fresh := testIDs(tc.unsampled, 23)
			if !tc.unknown {
				for _, id := range fresh {
					b.Connected(id)
				}
			}
			cands := append(slices.Clone(fresh), healthy...)
			first := map[peer.ID]int{}
			for call := 1; call <= tc.within; call++ {
				got := b.Best(cands, 3, nil)
				require.Len(t, got, 3)
				require.Equal(t, healthy[:2], peersOf(got[:2]), "call %d: the best two keep their places", call)
				last := got[2]
				require.Equal(t, call%tc.every == 0, last.Explored, "call %d of every %d: %+v", call, tc.every, last)
				if !last.Explored {
					require.Equal(t, healthy[2], last.Peer, "call %d", call)
					continue
				}
				require.Contains(t, fresh, last.Peer)
				require.Equal(t, b.Score(last.Peer), last.Score)
				if _, ok := first[last.Peer]; !ok {
					first[last.Peer] = call
				}
			}
			require.Len(t, first, tc.unsampled, "each new peer explored within %d calls: %v", tc.within, first)
			t.Logf("first explored at calls %v", first)
		})
	}

	t.Run("round robin", func(t *testing.T) {
		p := scoring.DefaultParams()
		p.ExploreEvery = 1
		b, mock := newMockBook(t, p)
		healthy := testIDs(5, 30)
		for i, id := range healthy {
			b.ReportRequest(id, testProto, time.Duration(i+1)*10*time.Millisecond, scoring.Success)
		}
		fresh := testIDs(3, 31)
		cands := append(slices.Clone(healthy), fresh...)
		var order []peer.ID
		for range 9 {
			mock.Add(time.Second)
			got := b.Best(cands, 2, nil)
			require.True(t, got[1].Explored)
			order = append(order, got[1].Peer)
		}
		// The one explored longest ago goes first: a fixed cycle.
		require.ElementsMatch(t, fresh, order[:3])
		require.Equal(t, order[:3], order[3:6])
		require.Equal(t, order[:3], order[6:])
	})

	t.Run("sampled once explored", func(t *testing.T) {
		b, healthy := sampledBook(t, scoring.DefaultParams(), 10, 24)
		fresh := testIDs(1, 25)[0]
		cands := append([]peer.ID{fresh}, healthy...)
		var got []scoring.Ranked
		for range scoring.DefaultParams().ExploreEvery {
			got = b.Best(cands, 3, nil)
		}
		require.Equal(t, fresh, got[2].Peer)
		require.True(t, got[2].Explored)
		// Tried and slow: it has samples now, so it competes on its score.
		b.ReportRequest(fresh, testProto, time.Second, scoring.Success)
		for range 4 * scoring.DefaultParams().ExploreEvery {
			require.Equal(t, healthy[:3], peersOf(b.Best(cands, 3, nil)))
		}
	})

	t.Run("never with ExploreEvery 0", func(t *testing.T) {
		p := scoring.DefaultParams()
		p.ExploreEvery = 0
		b, healthy := sampledBook(t, p, 10, 26)
		cands := append(testIDs(3, 27), healthy...)
		for range 100 {
			got := b.Best(cands, 3, nil)
			require.Equal(t, healthy[:3], peersOf(got))
			for _, r := range got {
				require.False(t, r.Explored)
			}
		}
	})

	t.Run("nothing to explore when all fit", func(t *testing.T) {
		p := scoring.DefaultParams()
		p.ExploreEvery = 1
		b, healthy := sampledBook(t, p, 2, 28)
		fresh := testIDs(1, 29)[0]
		got := b.Best(append([]peer.ID{fresh}, healthy...), 3, nil)
		require.Equal(t, append(slices.Clone(healthy), fresh), peersOf(got), "all three fit on their scores")
		require.False(t, got[2].Explored)
	})
}
