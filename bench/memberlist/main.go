// Command memberlist measures hashicorp/memberlist with its LAN defaults on
// this machine, as the baseline for peernode's discovery benchmarks
// (test/discovery_bench_test.go): N members on 127.0.0.1, joined through
// the first one; once every member lists all N, the bytes each member sends
// per second in steady state; then members crashed one after another
// (Shutdown without Leave) and the time until every other member declares
// each one dead.
//
// Bytes are application payload: every UDP packet and every byte written to
// a TCP stream (push-pull, TCP fallback pings), counted by a wrapper around
// memberlist's own NetTransport; IP, UDP and TCP headers are not counted.
//
// It is a separate module so that memberlist never enters peernode's
// dependencies.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

func main() {
	n := flag.Int("n", 100, "members")
	kills := flag.Int("kills", 5, "members crashed one after another")
	settle := flag.Duration("settle", 15*time.Second, "wait after convergence before measuring, so the joins' gossip dies down")
	window := flag.Duration("window", 0, "steady-state window for bytes per member per second (0: two push-pull periods, as memberlist scales them for N)")
	timeout := flag.Duration("timeout", 3*time.Minute, "longest wait for convergence and for each death to be declared everywhere")
	flag.Parse()
	if *n < 3 || *kills < 0 || *kills > *n-2 {
		fmt.Fprintln(os.Stderr, "need n >= 3 and 0 <= kills <= n-2")
		os.Exit(2)
	}
	if err := run(*n, *kills, *settle, *window, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "memberlist bench:", err)
		os.Exit(1)
	}
}

func run(n, kills int, settle, window, timeout time.Duration) error {
	c, err := startCluster(n)
	defer c.shutdown()
	if err != nil {
		return err
	}
	lan := memberlist.DefaultLANConfig()
	if window == 0 {
		window = 2 * pushPullPeriod(lan.PushPullInterval, n)
	}
	fmt.Printf("memberlist %s LAN defaults: probe %s (timeout %s), gossip %s to %d, push-pull %s (scaled to %s at N=%d), suspicion mult %d\n",
		memberlistVersion(), lan.ProbeInterval, lan.ProbeTimeout, lan.GossipInterval, lan.GossipNodes,
		lan.PushPullInterval, pushPullPeriod(lan.PushPullInterval, n), n, lan.SuspicionMult)

	t0 := time.Now()
	if err := c.join(); err != nil {
		return err
	}
	if err := c.waitConverged(timeout); err != nil {
		return err
	}
	fmt.Printf("converged: N=%d, every member lists all %d, %.2f s after the first join\n", n, n, time.Since(t0).Seconds())

	time.Sleep(settle)
	before, start := c.sentBytes(), time.Now()
	time.Sleep(window)
	after, elapsed := c.sentBytes(), time.Since(start)
	perMember := float64(after-before) / float64(n) / elapsed.Seconds()
	fmt.Printf("steady state: %.1f B/member/s sent (UDP+TCP payload) over %.0f s\n", perMember, elapsed.Seconds())

	var all, first []time.Duration
	for k := range kills {
		d1, dAll, err := c.crashOne(timeout)
		if err != nil {
			return fmt.Errorf("kill %d: %w", k+1, err)
		}
		first, all = append(first, d1), append(all, dAll)
		fmt.Printf("kill %d: first declared dead after %.2f s, by all %d others after %.2f s\n", k+1, d1.Seconds(), c.alive(), dAll.Seconds())
	}
	if f := c.falseDeaths(); f > 0 {
		return fmt.Errorf("%d live members were declared dead by some member", f)
	}
	if kills > 0 {
		fmt.Printf("RESULT memberlist N=%d: median crash-to-dead-everywhere %.2f s (first %.2f s) over %d kills; %.1f B/member/s\n",
			n, median(all).Seconds(), median(first).Seconds(), kills, perMember)
	}
	return nil
}

// memberlistVersion is the memberlist module version this binary was built
// with.
func memberlistVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/memberlist" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

// pushPullPeriod is memberlist's push-pull interval as it scales it for n
// members (memberlist's pushPullScale, restated): doubled past 32 members,
// tripled past 64, and so on.
func pushPullPeriod(base time.Duration, n int) time.Duration {
	const threshold = 32
	mult := 1
	for size := threshold; n > size; size *= 2 {
		mult++
	}
	return time.Duration(mult) * base
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// member is one memberlist instance with its byte counter and the deaths
// it has declared.
type member struct {
	name  string
	ml    *memberlist.Memberlist
	tr    *countingTransport
	dead  *deaths
	alive bool
}

// deaths records when a member first saw each other member leave or die.
type deaths struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (d *deaths) NotifyJoin(*memberlist.Node)   {}
func (d *deaths) NotifyUpdate(*memberlist.Node) {}
func (d *deaths) NotifyLeave(node *memberlist.Node) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.at[node.Name]; !ok {
		d.at[node.Name] = now
	}
}

func (d *deaths) get(name string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.at[name]
	return t, ok
}

type cluster struct {
	members []*member
	rng     *rand.Rand
}

func startCluster(n int) (*cluster, error) {
	c := &cluster{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	quiet := log.New(io.Discard, "", 0)
	for i := range n {
		tr, err := newCountingTransport(quiet)
		if err != nil {
			return c, err
		}
		conf := memberlist.DefaultLANConfig()
		conf.Name = fmt.Sprintf("m%03d", i)
		conf.BindAddr = "127.0.0.1"
		conf.BindPort = tr.port()
		conf.AdvertiseAddr = "127.0.0.1"
		conf.AdvertisePort = tr.port()
		conf.Transport = tr
		conf.Logger = quiet
		d := &deaths{at: map[string]time.Time{}}
		conf.Events = d
		ml, err := memberlist.Create(conf)
		if err != nil {
			_ = tr.Shutdown()
			return c, fmt.Errorf("create member %d: %w", i, err)
		}
		c.members = append(c.members, &member{name: conf.Name, ml: ml, tr: tr, dead: d, alive: true})
	}
	return c, nil
}

// join joins every member to the first.
func (c *cluster) join() error {
	seed := c.members[0].ml.LocalNode().FullAddress().Addr
	for _, m := range c.members[1:] {
		if _, err := m.ml.Join([]string{seed}); err != nil {
			return fmt.Errorf("%s joins: %w", m.name, err)
		}
	}
	return nil
}

func (c *cluster) waitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for _, m := range c.members {
			if m.ml.NumMembers() != len(c.members) {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no convergence within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cluster) sentBytes() uint64 {
	var sum uint64
	for _, m := range c.members {
		if m.alive {
			sum += m.tr.sent.Load()
		}
	}
	return sum
}

// falseDeaths counts, over all live members, the live members they
// declared dead at some point.
func (c *cluster) falseDeaths() int {
	k := 0
	for _, m := range c.members {
		if !m.alive {
			continue
		}
		for _, o := range c.members {
			if _, ok := m.dead.get(o.name); ok && o.alive {
				k++
			}
		}
	}
	return k
}

func (c *cluster) alive() int {
	k := 0
	for _, m := range c.members {
		if m.alive {
			k++
		}
	}
	return k
}

// crashOne shuts a random live member down without leaving and waits until
// every other live member has declared it dead (or left). It returns the
// time until the first and until the last did, polling every 5 ms.
func (c *cluster) crashOne(timeout time.Duration) (first, all time.Duration, err error) {
	var live []*member
	for _, m := range c.members {
		if m.alive {
			live = append(live, m)
		}
	}
	victim := live[c.rng.IntN(len(live))]
	t0 := time.Now()
	if err := victim.ml.Shutdown(); err != nil {
		return 0, 0, err
	}
	victim.alive = false
	deadline := t0.Add(timeout)
	for {
		var firstAt, lastAt time.Time
		pending := 0
		for _, m := range live {
			if m == victim {
				continue
			}
			at, ok := m.dead.get(victim.name)
			if !ok {
				pending++
				continue
			}
			if firstAt.IsZero() || at.Before(firstAt) {
				firstAt = at
			}
			if at.After(lastAt) {
				lastAt = at
			}
		}
		if pending == 0 {
			return firstAt.Sub(t0), lastAt.Sub(t0), nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%s still alive for %d members after %s", victim.name, pending, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *cluster) shutdown() {
	for _, m := range c.members {
		if m.alive {
			_ = m.ml.Shutdown()
			m.alive = false
		}
	}
}
