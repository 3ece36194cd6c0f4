package test

import (
	"flag"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/discovery"
	"peernode/node"
	"peernode/scoring"
)

// Flags of the discovery benchmarks. StaleAfter defaults to four announce
// intervals, as in production (30 s and 2 min).
var (
	convN        = flag.Int("conv.n", 50, "nodes in BenchmarkConvergence")
	convInterval = flag.Duration("conv.interval", 250*time.Millisecond, "announce interval in BenchmarkConvergence (StaleAfter is four of them)")

	pruneN        = flag.Int("prune.n", 12, "nodes in BenchmarkPruneLatency, at least -prune.kills+2 (the issue's headline run: 100, with -prune.interval=1s -prune.stale=4s)")
	pruneInterval = flag.Duration("prune.interval", 250*time.Millisecond, "announce interval in BenchmarkPruneLatency")
	pruneStale    = flag.Duration("prune.stale", time.Second, "StaleAfter in BenchmarkPruneLatency")
	pruneKills    = flag.Int("prune.kills", 10, "nodes crashed one after another in BenchmarkPruneLatency")

	discConnLow = flag.Int("disc.connlow", 16, "connection manager low water mark of every node in the discovery benchmarks (high is twice it); the rendezvous loop dials members until a node holds this many")
	discWindow  = flag.Int("disc.window", 8, "steady-state window for B/node/s, in announce intervals")
	discWait    = flag.Int("disc.wait", 60, "longest wait for convergence, in announce intervals (at least WaitTimeout plus ten)")
)

// BenchmarkConvergence: N nodes (-conv.n) in one process, each
// bootstrapping from node 0, announcing every -conv.interval. It times
// from the start of the last node until every node's member table holds
// all N-1 others with a signed announcement (tables are polled every
// 5 ms), then measures the GossipSub bytes each node sends per second in
// steady state, over -disc.window intervals.
//
// Metrics (medians over iterations): intervals (convergence time in
// announce intervals), s/converge, B/node/s, B/announcement (a signed
// announcement's size, for scale), conns/node (connections each node holds
// at the end of the window). Run with -benchtime 1x (or 3x): an iteration
// starts N nodes.
func BenchmarkConvergence(b *testing.B) {
	n, interval := *convN, *convInterval
	var conv, rate, annSize, conns []float64
	for b.Loop() {
		var t0 time.Time
		nodes := startDiscoveryCluster(b, n, interval, 4*interval, func() { t0 = time.Now() })
		d := waitDiscoveryConverged(b, nodes, allIndexes(n), convergeTimeout(interval)).Sub(t0)
		s := measureSteadyState(nodes, interval, *discWindow)
		closeAllNodes(nodes)
		dropped, throttled := shed(nodes)
		b.Logf("N=%d interval=%s: converged %.3f s (%.2f intervals) after the last start; %.0f B/node/s; %.0f B/announcement; %.1f conns/node; GossipSub shed %d RPCs, %d messages",
			n, interval, d.Seconds(), float64(d)/float64(interval), s.bytesPerNodeSec, s.announcementSize, s.connsPerNode, dropped, throttled)
		conv = append(conv, d.Seconds())
		rate, annSize, conns = append(rate, s.bytesPerNodeSec), append(annSize, s.announcementSize), append(conns, s.connsPerNode)
	}
	b.ReportMetric(medianOf(conv)/interval.Seconds(), "intervals")
	b.ReportMetric(medianOf(conv), "s/converge")
	b.ReportMetric(medianOf(rate), "B/node/s")
	b.ReportMetric(medianOf(annSize), "B/announcement")
	b.ReportMetric(medianOf(conns), "conns/node")
}

// BenchmarkPruneLatency: N nodes (-prune.n) converge; their steady-state
// GossipSub traffic is measured; then -prune.kills nodes crash one after
// another (the host closes, no leaving announcement), and each time the
// benchmark waits until every survivor has pruned the victim. Survivors'
// tables are polled, every 50 ms while no deadline is near and as fast as
// a sweep goes (a few ms at N=100) from 30 ms before a survivor's
// deadline: poll-ms is the median gap between the last poll that saw the
// victim and the first that did not, the resolution of every figure below.
//
// Per kill, with lastHeard as each survivor recorded the victim just
// before pruning it:
//   - heard-to-prune: max over survivors of (prune - lastHeard), the
//     table's timer precision (ideal: StaleAfter exactly);
//   - crash-to-all-pruned: from the crash until the last survivor pruned
//     the victim, the detection time an operator sees. It is shorter than
//     StaleAfter because the victim was last heard up to one interval
//     before it crashed.
//
// Metrics (medians over kills): heard-to-prune/stale (target <= 1.05),
// crash-to-all-pruned/stale, s/detect (crash to all pruned), poll-ms,
// B/node/s (steady state before the kills), conns/node.
//
// A live member missing from any survivor's table after a kill, or pruned
// and added again (its FirstHeard changed), fails the benchmark, as does a
// victim that comes back.
func BenchmarkPruneLatency(b *testing.B) {
	n, interval, stale, kills := *pruneN, *pruneInterval, *pruneStale, *pruneKills
	if kills > n-2 {
		b.Fatalf("-prune.kills=%d needs at least %d nodes", kills, kills+2)
	}
	var heard, crash, detect, poll, rate, conns []float64
	for b.Loop() {
		nodes := startDiscoveryCluster(b, n, interval, stale, nil)
		alive := allIndexes(n)
		waitDiscoveryConverged(b, nodes, alive, convergeTimeout(interval))
		first := firstHeardSnapshot(nodes, alive)
		s := measureSteadyState(nodes, interval, *discWindow)
		rate, conns = append(rate, s.bytesPerNodeSec), append(conns, s.connsPerNode)
		dropped, throttled := shed(nodes)
		b.Logf("N=%d interval=%s stale=%s: steady state %.0f B/node/s, %.1f conns/node, %.0f B/announcement; GossipSub shed %d RPCs, %d messages",
			n, interval, stale, s.bytesPerNodeSec, s.connsPerNode, s.announcementSize, dropped, throttled)

		rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		var victims []int
		for k := range kills {
			v := alive[rng.IntN(len(alive))]
			alive = slices.DeleteFunc(alive, func(i int) bool { return i == v })
			victims = append(victims, v)
			r := crashAndWaitPruned(b, nodes, v, alive, stale)
			b.Logf("kill %d (node%d): heard-to-prune max %.4f s (%.4f stale), crash-to-first %.3f s, crash-to-all %.3f s (%.3f stale), poll gap median %.1f ms max %.1f ms",
				k+1, v, r.heardToPrune.Seconds(), float64(r.heardToPrune)/float64(stale), r.crashToFirst.Seconds(),
				r.crashToAll.Seconds(), float64(r.crashToAll)/float64(stale), msOf(r.pollGapMedian), msOf(r.pollGapMax))
			heard = append(heard, float64(r.heardToPrune)/float64(stale))
			crash = append(crash, float64(r.crashToAll)/float64(stale))
			detect = append(detect, r.crashToAll.Seconds())
			poll = append(poll, msOf(r.pollGapMedian))
			checkLiveMembers(b, nodes, alive, first)
		}
		checkVictimsGone(b, nodes, alive, victims)
		closeAllNodes(nodes)
	}
	b.ReportMetric(medianOf(heard), "heard-to-prune/stale")
	b.ReportMetric(medianOf(crash), "crash-to-all-pruned/stale")
	b.ReportMetric(medianOf(detect), "s/detect")
	b.ReportMetric(medianOf(poll), "poll-ms")
	b.ReportMetric(medianOf(rate), "B/node/s")
	b.ReportMetric(medianOf(conns), "conns/node")
}

// startDiscoveryCluster starts n nodes, each bootstrapping from node 0,
// with the API off, the given announce interval and stale threshold, the
// rendezvous loop at twice the announce interval (production's ratio,
// 1 min to 30 s) and the connection manager's water marks from
// -disc.connlow. lastStart, if not nil, is called just before the last
// node is created.
func startDiscoveryCluster(b *testing.B, n int, interval, stale time.Duration, lastStart func()) []*node.Node {
	b.Helper()
	low := *discConnLow
	return StartNodes(b, n, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		cfg.AnnounceInterval, cfg.StaleAfter = interval, stale
		cfg.RendezvousInterval = 2 * interval
		cfg.ConnMgrLow, cfg.ConnMgrHigh = low, 2*low
		// Scoring at its production pace: the test profile pings every
		// 200 ms, which at N=100 in one process would swamp discovery.
		cfg.Ping, cfg.ScoreInterval = scoring.DefaultPingConfig(), node.DefaultScoreInterval
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{AddrInfo(started[0])}
		}
		if i == n-1 && lastStart != nil {
			lastStart()
		}
	})
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// closeAllNodes closes the nodes at once (each Close lingers a quarter of
// a second for its leaving announcement); StartNode's cleanups then find
// them closed.
func closeAllNodes(nodes []*node.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { _ = n.Close() })
	}
	wg.Wait()
}

// waitDiscoveryConverged polls, every 5 ms, the tables of the nodes in
// alive until each holds every other one with a signed announcement, and
// returns the time of the poll that found the last table complete. A
// table once complete is not polled again.
func waitDiscoveryConverged(b *testing.B, nodes []*node.Node, alive []int, timeout time.Duration) time.Time {
	b.Helper()
	want := map[peer.ID]bool{}
	for _, i := range alive {
		want[nodes[i].ID()] = true
	}
	pending := slices.Clone(alive)
	deadline := time.Now().Add(timeout)
	for {
		pending = slices.DeleteFunc(pending, func(i int) bool {
			return signedMembers(nodes[i], want) == len(want)-1
		})
		now := time.Now()
		if len(pending) == 0 {
			return now
		}
		if now.After(deadline) {
			i := pending[0]
			dropped, throttled := shed(nodes)
			b.Fatalf("no convergence after %s: %d tables incomplete; node%d holds %d of %d signed members (%d connections); GossipSub shed %d RPCs and %d messages",
				timeout, len(pending), i, signedMembers(nodes[i], want), len(want)-1, len(nodes[i].Host().Network().Peers()), dropped, throttled)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func convergeTimeout(interval time.Duration) time.Duration {
	return max(WaitTimeout+10*interval, time.Duration(*discWait)*interval)
}

// shed sums the GossipSub load shedding of all nodes: RPCs dropped on full
// outbound queues, messages dropped on a full validation queue.
func shed(nodes []*node.Node) (dropped, throttled uint64) {
	for _, n := range nodes {
		t := n.Announcer().Traffic()
		dropped, throttled = dropped+t.DroppedRPCs, throttled+t.Throttled
	}
	return dropped, throttled
}

// signedMembers counts the members of n's table in want that it holds with
// a signed announcement.
func signedMembers(n *node.Node, want map[peer.ID]bool) int {
	k := 0
	for _, m := range n.Members() {
		if m.Signed != nil && want[m.NodeID] {
			k++
		}
	}
	return k
}

type steadyState struct {
	bytesPerNodeSec  float64
	announcementSize float64
	connsPerNode     float64
}

// measureSteadyState waits two announce intervals, then measures the
// GossipSub bytes all nodes send over windows intervals, per node per
// second, with the mean signed-announcement size and connection count.
func measureSteadyState(nodes []*node.Node, interval time.Duration, windows int) steadyState {
	sent := func() uint64 {
		var sum uint64
		for _, n := range nodes {
			sum += n.Announcer().Traffic().SentBytes
		}
		return sum
	}
	time.Sleep(2 * interval)
	before, t0 := sent(), time.Now()
	time.Sleep(time.Duration(windows) * interval)
	after, elapsed := sent(), time.Since(t0)
	var size, count, conns float64
	for _, n := range nodes {
		conns += float64(len(n.Host().Network().Peers()))
		for _, m := range n.Members() {
			if m.Signed != nil {
				size += float64(len(m.Signed))
				count++
			}
		}
	}
	s := steadyState{
		bytesPerNodeSec: float64(after-before) / float64(len(nodes)) / elapsed.Seconds(),
		connsPerNode:    conns / float64(len(nodes)),
	}
	if count > 0 {
		s.announcementSize = size / count
	}
	return s
}

// firstHeardSnapshot records, for every live node, when it first heard of
// every other: a member pruned and added again gets a new FirstHeard.
func firstHeardSnapshot(nodes []*node.Node, alive []int) map[[2]peer.ID]time.Time {
	out := map[[2]peer.ID]time.Time{}
	for _, i := range alive {
		for _, m := range nodes[i].Members() {
			out[[2]peer.ID{nodes[i].ID(), m.NodeID}] = m.FirstHeard
		}
	}
	return out
}

// checkLiveMembers fails if a survivor's table lacks a live member, or
// holds one that was pruned and added again since first.
func checkLiveMembers(b *testing.B, nodes []*node.Node, alive []int, first map[[2]peer.ID]time.Time) {
	b.Helper()
	for _, i := range alive {
		table := map[peer.ID]discovery.Member{}
		for _, m := range nodes[i].Members() {
			table[m.NodeID] = m
		}
		for _, j := range alive {
			if i == j {
				continue
			}
			m, ok := table[nodes[j].ID()]
			if !ok {
				b.Fatalf("node%d pruned live node%d", i, j)
			}
			if f := first[[2]peer.ID{nodes[i].ID(), m.NodeID}]; !m.FirstHeard.Equal(f) {
				b.Fatalf("node%d pruned live node%d and heard it again (first heard %s, now %s)",
					i, j, f.Format(time.StampMicro), m.FirstHeard.Format(time.StampMicro))
			}
		}
	}
}

// checkVictimsGone fails if a crashed node is back in a survivor's table.
func checkVictimsGone(b *testing.B, nodes []*node.Node, alive, victims []int) {
	b.Helper()
	for _, i := range alive {
		for _, v := range victims {
			if _, ok := memberOf(nodes[i], nodes[v].ID()); ok {
				b.Fatalf("node%d holds crashed node%d again", i, v)
			}
		}
	}
}

// memberOf finds p in n's table (Members is sorted by node ID).
func memberOf(n *node.Node, p peer.ID) (discovery.Member, bool) {
	ms := n.Members()
	k := sort.Search(len(ms), func(i int) bool { return ms[i].NodeID >= p })
	if k < len(ms) && ms[k].NodeID == p {
		return ms[k], true
	}
	return discovery.Member{}, false
}

type pruneResult struct {
	heardToPrune, crashToFirst, crashToAll time.Duration
	pollGapMedian, pollGapMax              time.Duration
}

// pruneWatch is one survivor's view of the victim.
type pruneWatch struct {
	lastHeard   time.Time // LastHeard in the last poll that saw the victim
	lastPresent time.Time // when that poll ran
	prunedAt    time.Time // the first poll that did not see it
}

// Polling pace while watching for prunes: at most every
// pruneFarPoll, and without pause from pruneNearMargin before the
// earliest deadline a survivor's table has armed.
const (
	pruneFarPoll    = 50 * time.Millisecond
	pruneNearMargin = 30 * time.Millisecond
)

// crashAndWaitPruned closes the victim's host (no leaving announcement)
// and polls the survivors until each has pruned it.
func crashAndWaitPruned(b *testing.B, nodes []*node.Node, victim int, survivors []int, stale time.Duration) pruneResult {
	b.Helper()
	id := nodes[victim].ID()
	watch := map[int]*pruneWatch{}
	for _, i := range survivors {
		watch[i] = &pruneWatch{}
	}
	tCrash := time.Now()
	if err := nodes[victim].Host().Close(); err != nil {
		b.Fatalf("crash node%d: %v", victim, err)
	}
	deadline := tCrash.Add(stale + WaitTimeout)
	pending := slices.Clone(survivors)
	for len(pending) > 0 {
		next := time.Now().Add(pruneFarPoll)
		pending = slices.DeleteFunc(pending, func(i int) bool {
			w := watch[i]
			m, ok := memberOf(nodes[i], id)
			now := time.Now()
			if !ok {
				w.prunedAt = now
				return true
			}
			w.lastHeard, w.lastPresent = m.LastHeard, now
			if due := m.LastHeard.Add(stale - pruneNearMargin); due.Before(next) {
				next = due
			}
			return false
		})
		if len(pending) > 0 && time.Now().After(deadline) {
			i := pending[0]
			b.Fatalf("%d survivors still hold crashed node%d %s after the crash; node%d last heard it %s ago",
				len(pending), victim, time.Since(tCrash), i, time.Since(watch[i].lastHeard))
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	var r pruneResult
	var gaps []time.Duration
	for i, w := range watch {
		if w.lastPresent.IsZero() {
			b.Fatalf("node%d did not hold node%d when it crashed", i, victim)
		}
		r.heardToPrune = max(r.heardToPrune, w.prunedAt.Sub(w.lastHeard))
		r.crashToAll = max(r.crashToAll, w.prunedAt.Sub(tCrash))
		if d := w.prunedAt.Sub(tCrash); r.crashToFirst == 0 || d < r.crashToFirst {
			r.crashToFirst = d
		}
		gap := w.prunedAt.Sub(w.lastPresent)
		gaps = append(gaps, gap)
		r.pollGapMax = max(r.pollGapMax, gap)
	}
	slices.Sort(gaps)
	r.pollGapMedian = gaps[len(gaps)/2]
	return r
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
