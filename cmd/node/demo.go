package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/internal/netdelay"
	"peernode/node"
)

const demoUsage = `demo [--nodes N] [--blob-size BYTES]

Runs a private network of N nodes (default 5, from 2 to 20) on 127.0.0.1 in
this one process, with short intervals and different latencies injected on
the nodes' connections, and tells what happens: the handshakes, the members
each node finds, the scores node0 gives the others, a blob stored with
replicas and fetched back from another node, and one node crashing and being
pruned. Then it serves node0's web page and control API until Ctrl-C. Its
data lives in a temporary directory, removed at the end; it does not touch
--data-dir.

Examples:
  peernode demo
  peernode demo --nodes 8`

// Demo pacing: the test profile's short intervals, slowed a little so the
// story reads well.
const (
	demoMaxNodes    = 20
	demoStepTimeout = 60 * time.Second
	demoPoll        = 50 * time.Millisecond
)

// demoLatency is the latency injected on node j's connections (j >= 1).
func demoLatency(j int) time.Duration {
	ms := []int{5, 40, 15, 80, 25, 60, 10, 50}
	return time.Duration(ms[(j-1)%len(ms)]) * time.Millisecond
}

type demo struct {
	out   io.Writer
	start time.Time
	dir   string
	nodes []*node.Node
	names map[peer.ID]string
	mu    sync.Mutex // guards out across the narrating goroutines
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%6.2fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) name(p peer.ID) string {
	if n, ok := d.names[p]; ok {
		return n
	}
	return p.ShortString()
}

func runDemo(env *cliEnv, args []string) error {
	fs, _ := newFlagSet(env, "demo", demoUsage)
	count := fs.Int("nodes", 5, fmt.Sprintf("nodes in the network, 2 to %d", demoMaxNodes))
	blobSize := fs.Int("blob-size", 1<<20, "bytes of the blob stored with replicas and fetched back")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *count < 2 || *count > demoMaxNodes {
		return usagef("--nodes %d: want 2 to %d", *count, demoMaxNodes)
	}
	if *blobSize < 1 || *blobSize > 256<<20 {
		return usagef("--blob-size %d: want 1 byte to 256 MiB", *blobSize)
	}
	if env.getenv("GOLOG_LOG_LEVEL") == "" {
		// The latency-injecting connections hide the TCP socket from
		// libp2p's TCP transport, which logs an error per connection that
		// it cannot set keep-alives: expected here, not worth a line.
		_ = logging.SetLogLevel("tcp-tpt", "fatal")
	}
	dir, err := os.MkdirTemp("", "peernode-demo-")
	if err != nil {
		return fmt.Errorf("make the demo's directory: %w", err)
	}
	defer os.RemoveAll(dir)
	d := &demo{out: env.stdout, start: time.Now(), dir: dir, names: map[peer.ID]string{}}
	defer d.closeAll()
	if err := d.run(*count, *blobSize); err != nil {
		return err
	}
	sigs, stop := stopSignals(env)
	defer stop()
	sig := <-sigs
	d.say("received %v: stopping the nodes", sig)
	d.closeAll()
	fmt.Fprintln(env.stdout, "stopped")
	return nil
}

func (d *demo) closeAll() {
	for _, n := range d.nodes {
		_ = n.Close()
	}
	d.nodes = d.nodes[:0]
}

// run tells the story up to the point where the web page is served.
func (d *demo) run(count, blobSize int) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	nw, err := node.DeriveNetwork(secret)
	if err != nil {
		return err
	}
	d.say("starting %d nodes on 127.0.0.1 in a private network %s (data in %s)", count, nw.ID, d.dir)
	for i := range count {
		if err := d.startNode(i, nw); err != nil {
			return err
		}
	}
	steps := []func() error{d.waitVerified, d.waitMembers, d.showScores, func() error { return d.storeAndFetch(blobSize) }, d.crashAndPrune}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	n0 := d.nodes[0]
	d.say("demo ready: node0's web page is at http://%s/ (log in with the token in %s)",
		n0.APIAddr(), filepath.Join(n0.Config().DataDir, "api.token"))
	d.say("press Ctrl-C to stop")
	return nil
}

func (d *demo) startNode(i int, nw node.Network) error {
	name := fmt.Sprintf("node%d", i)
	cfg := node.LocalTestConfig(filepath.Join(d.dir, name))
	cfg.Network, cfg.Name = nw, name
	cfg.AnnounceInterval, cfg.StaleAfter = 250*time.Millisecond, 1500*time.Millisecond
	cfg.Scoring.FreshFor, cfg.Scoring.StaleAfter = 750*time.Millisecond, 1500*time.Millisecond
	cfg.Ping.Interval = 300 * time.Millisecond
	cfg.APIAddr = ""
	if i == 0 {
		cfg.APIAddr = "127.0.0.1:0"
	} else {
		cfg.TCPDialer = netdelay.Dialer(demoLatency(i))
		cfg.Bootstrap = []peer.AddrInfo{{ID: d.nodes[0].ID(), Addrs: d.nodes[0].Host().Addrs()}}
	}
	n, err := node.New(cfg)
	if err != nil {
		return fmt.Errorf("new %s: %w", name, err)
	}
	if err := n.Start(); err != nil {
		_ = n.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	d.nodes = append(d.nodes, n)
	d.names[n.ID()] = name
	if i == 0 {
		d.say("%s is up: %s", name, n.ID())
	} else {
		d.say("%s is up: %s, dialling node0 with %s of latency on its connections", name, n.ID(), demoLatency(i))
	}
	return nil
}

// waitFor polls cond until it holds, or fails after demoStepTimeout.
func (d *demo) waitFor(what string, cond func() bool) error {
	deadline := time.Now().Add(demoStepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s did not happen within %s", what, demoStepTimeout)
		}
		time.Sleep(demoPoll)
	}
	return nil
}

// waitVerified tells each handshake with node0 as it completes.
func (d *demo) waitVerified() error {
	n0 := d.nodes[0]
	told := map[peer.ID]bool{}
	return d.waitFor("the handshakes with node0", func() bool {
		for _, n := range d.nodes[1:] {
			info, ok := n0.PeerInfo(n.ID())
			if ok && info.Status == node.StatusVerified && !told[n.ID()] {
				told[n.ID()] = true
				d.say("handshake: node0 verified %s (%s, role %s) in %s", d.name(n.ID()), info.Identity.Name, info.Identity.Role, info.HandshakeRTT.Round(10*time.Microsecond))
			}
		}
		return len(told) == len(d.nodes)-1
	})
}

// waitMembers waits until every member table holds every other node.
func (d *demo) waitMembers() error {
	t0 := time.Now()
	err := d.waitFor("every node finding every other", func() bool {
		for _, n := range d.nodes {
			if len(n.Members()) < len(d.nodes)-1 {
				return false
			}
		}
		return true
	})
	if err == nil {
		d.say("members: each of the %d nodes knows the %d others from their signed announcements (%s)", len(d.nodes), len(d.nodes)-1, time.Since(t0).Round(time.Millisecond))
	}
	return err
}

// showScores waits until node0 has pinged every other node a few times and
// prints its ranking.
func (d *demo) showScores() error {
	n0 := d.nodes[0]
	err := d.waitFor("node0's ping rounds", func() bool {
		for _, n := range d.nodes[1:] {
			if e := n0.Score(n.ID()); e.SmoothedRTT == 0 || e.Components[0].Samples < 3 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	others := slices.Clone(d.nodes[1:])
	slices.SortFunc(others, func(a, b *node.Node) int {
		sa, sb := n0.Score(a.ID()).Score, n0.Score(b.ID()).Score
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	d.say("scores: node0 ranks the others (latency, reliability, freshness, penalty):")
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tINJECTED\tSMOOTHED RTT\tRELIABILITY\tSCORE")
	for _, n := range others {
		e := n0.Score(n.ID())
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%.2f\t%.3f\n", d.name(n.ID()), demoLatency(slices.Index(d.nodes, n)), e.SmoothedRTT.Round(100*time.Microsecond), e.Reliability, e.Score)
	}
	_ = tw.Flush()
	d.mu.Lock()
	_, _ = d.out.Write(buf.Bytes())
	d.mu.Unlock()
	return nil
}

// storeAndFetch puts a random blob on node0 with replicas and fetches it
// back from the node farthest down node0's list.
func (d *demo) storeAndFetch(size int) error {
	n0 := d.nodes[0]
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	replicas := min(3, len(d.nodes))
	ctx, cancel := context.WithTimeout(context.Background(), demoStepTimeout)
	defer cancel()
	res, err := n0.PutBlob(ctx, bytes.NewReader(data), int64(size), replicas)
	if err != nil {
		return fmt.Errorf("demo put: %w", err)
	}
	var holders []string
	for _, p := range res.Holders {
		holders = append(holders, d.name(p))
	}
	d.say("put: a %d-byte blob %s stored on %v (node0 and the best-scored)", size, res.Info.ID, holders)
	reader := d.nodes[len(d.nodes)-1]
	if slices.Contains(res.Holders, reader.ID()) {
		// Fetch from a node without a copy when there is one.
		for _, n := range d.nodes[1:] {
			if !slices.Contains(res.Holders, n.ID()) {
				reader = n
				break
			}
		}
	}
	t0 := time.Now()
	blob, err := reader.OpenBlob(ctx, res.Info.ID)
	if err != nil {
		return fmt.Errorf("demo get: %w", err)
	}
	var got bytes.Buffer
	if err := blob.WriteRange(ctx, &got, 0, blob.Size); err != nil {
		return fmt.Errorf("demo get: %w", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		return errors.New("demo get: the bytes fetched differ from those stored")
	}
	from := "its own copy"
	if !blob.Local && len(blob.Holders()) > 0 {
		from = d.name(blob.Holders()[0])
	}
	d.say("get: %s fetched it back from %s in %s, verified chunk by chunk against its ID", d.name(reader.ID()), from, time.Since(t0).Round(time.Millisecond))
	return nil
}

// crashAndPrune crashes the last node (its host closes without a goodbye)
// and waits until every other node pruned it as stale.
func (d *demo) crashAndPrune() error {
	victim := d.nodes[len(d.nodes)-1]
	id := victim.ID()
	d.say("crash: %s stops without saying goodbye", d.name(id))
	t0 := time.Now()
	if err := victim.Host().Close(); err != nil {
		return fmt.Errorf("crash %s: %w", d.name(id), err)
	}
	survivors := d.nodes[:len(d.nodes)-1]
	err := d.waitFor("the crashed node being pruned", func() bool {
		for _, n := range survivors {
			for _, m := range n.Members() {
				if m.NodeID == id {
					return false
				}
			}
		}
		return true
	})
	if err == nil {
		d.say("pruned: every other node dropped %s from its member table %s after the crash (stale after %s of silence)",
			d.name(id), time.Since(t0).Round(time.Millisecond), victim.Config().StaleAfter)
	}
	_ = victim.Close()
	d.nodes = survivors
	return err
}
