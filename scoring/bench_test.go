package scoring_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/scoring"
)

// fillBook gives every peer a connected history: an RTT, one to four
// answered requests, often an announcement, sometimes a penalty, a
// GossipSub score or a relay; failPct percent of the peers then fail once,
// in pairs a few windows apart, each decided on its own: a pair is below
// LocalFaultMinPeers, so deciding it does not scan every peer (a wave of
// three or more would: see BenchmarkLocalOutageFlush).
func fillBook(b *scoring.Book, mock *clock.Mock, ids []peer.ID, seed uint64, failPct int) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for _, id := range ids {
		b.Connected(id)
		rtt := randDur(rng, time.Millisecond, 300*time.Millisecond)
		b.ObserveRTT(id, rtt)
		for range 1 + rng.IntN(4) {
			b.ReportRequest(id, testProto, rtt+randDur(rng, 0, 20*time.Millisecond), scoring.Success)
		}
		if rng.IntN(2) == 0 {
			b.Announced(id, mock.Now().Add(-randDur(rng, 0, 3*time.Minute)))
		}
		if rng.IntN(10) == 0 {
			b.Penalize(id, 2*rng.Float64())
		}
		if rng.IntN(4) == 0 {
			b.SetGossipScore(id, 100*rng.Float64()-50)
		}
		if rng.IntN(20) == 0 {
			b.SetRelayed(id, true)
		}
	}
	for i, k := range rng.Perm(len(ids))[:len(ids)*failPct/100] {
		b.ReportRequest(ids[k], testProto, 0, scoring.Failure)
		if (i+1)%2 == 0 {
			mock.Add(3 * b.Params().LocalFaultWindow)
			b.LocalFaults()
		}
	}
	decide(b, mock)
	b.LocalFaults()
}

// sortBaseline is the cost of what Rank cannot avoid: copying and sorting
// len(rs) scored candidates, in ns per sort (Rank's comparator).
func sortBaseline(rs []scoring.Ranked) float64 {
	const runs = 20
	start := time.Now()
	for range runs {
		c := slices.Clone(rs)
		slices.SortFunc(c, func(x, y scoring.Ranked) int {
			switch {
			case x.Score > y.Score:
				return -1
			case x.Score < y.Score:
				return 1
			}
			return strings.Compare(string(x.Peer), string(y.Peer))
		})
	}
	return float64(time.Since(start).Nanoseconds()) / runs
}

func BenchmarkRank10000(b *testing.B) {
	book, mock := newMockBook(b, scoring.DefaultParams())
	ids := testIDs(10_000, 70)
	fillBook(book, mock, ids, 70, 10)
	cands := slices.Clone(ids)
	rand.New(rand.NewPCG(71, 72)).Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	scored := make([]scoring.Ranked, len(cands))
	for i, id := range cands {
		scored[i] = scoring.Ranked{Peer: id, Score: book.Score(id)}
	}
	baseline := sortBaseline(scored)

	b.ReportAllocs()
	for b.Loop() {
		book.Rank(cands)
	}
	perRank := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perRank/float64(len(cands)), "ns/candidate")
	b.ReportMetric(perRank/baseline, "x-sort")
}

// BenchmarkBookMemory measures the live heap a Book holds per tracked peer
// (the peer IDs themselves, allocated before, are not counted).
func BenchmarkBookMemory(b *testing.B) {
	const n = 100_000
	ids := testIDs(n, 73)
	var perPeer float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		book, mock := newMockBook(b, scoring.DefaultParams())
		fillBook(book, mock, ids, 73, 2)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if book.Len() != n {
			b.Fatalf("book tracks %d peers, want %d", book.Len(), n)
		}
		perPeer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(book)
	}
	runtime.KeepAlive(ids)
	b.ReportMetric(perPeer, "B/peer")
}

// BenchmarkLocalOutageFlush measures deciding a local outage: every one of
// n connected peers fails at once, and the next read decides them all.
func BenchmarkLocalOutageFlush(b *testing.B) {
	for _, n := range []int{250, 1000, 4000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			book, mock := newMockBook(b, scoring.DefaultParams())
			ids := testIDs(n, 74)
			for _, id := range ids {
				book.Connected(id)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for _, id := range ids {
					book.ReportRequest(id, scoring.PingProto, 0, scoring.Timeout)
				}
				decide(book, mock)
				b.StartTimer()
				book.Score(ids[0])
			}
			if book.LocalFaults() != n*b.N {
				b.Fatalf("%d local faults, want %d", book.LocalFaults(), n*b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/failure")
			mock.Add(time.Hour) // let the next size start clean
		})
	}
}
