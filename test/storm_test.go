package test

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	coreconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peernode/node"
	"peernode/protocols/handshake"
)

var (
	stormN      = flag.Int("storm.n", 1000, "dialers in BenchmarkHandshakeStorm (try 5000)")
	stormRounds = flag.Int("storm.rounds", 3, "alternating bare and handshake storms in BenchmarkHandshakeStorm (medians reported)")
)

// Environment of the dialer child process.
const (
	envStormTarget = "PEERNODE_STORM_TARGET" // server multiaddr with /p2p
	envStormN      = "PEERNODE_STORM_N"
	envStormMode   = "PEERNODE_STORM_MODE" // "bare" or "handshake"
)

// BenchmarkHandshakeStorm: N dialers connect at once to one node. It runs
// twice in one benchmark: N bare dialers to a baseline host (connections
// per second, the baseline), then N handshaking dialers to a node
// (verified peers per second). The dialers live in a child process (this
// test binary again), so the server's heap is measured alone.
//
// Metrics: bare-conns/s, verified/s, verified/bare-rate (target >= 0.8),
// heap-KiB/verified-peer (target <= 64), failures (target 0).
// Run with -benchtime 1x; -args -storm.n=5000 for the large storm.
// Failures are summed over the rounds; the rest are medians.
func BenchmarkHandshakeStorm(b *testing.B) {
	n := *stormN
	for b.Loop() {
		// Bare and handshake storms alternate, -storm.rounds times: the
		// machine's pace drifts between storms of a few seconds, and the
		// medians of alternating rounds cancel most of it.
		var bares, rates, heaps []float64
		failures := 0
		for range *stormRounds {
			bares = append(bares, stormBare(b, n))
			rate, heapPerPeer, failed := stormHandshake(b, n)
			rates, heaps = append(rates, rate), append(heaps, heapPerPeer)
			failures += failed
		}
		bare, rate := medianOf(bares), medianOf(rates)
		b.ReportMetric(bare, "bare-conns/s")
		b.ReportMetric(rate, "verified/s")
		b.ReportMetric(rate/bare, "verified/bare-rate")
		b.ReportMetric(medianOf(heaps)/1024, "heap-KiB/verified-peer")
		b.ReportMetric(float64(failures), "failures")
	}
}

func stormServerLimits(cfg *node.Config, n int) {
	cfg.Limits.Conns = n + 256
	cfg.Limits.Streams = 8 * (n + 256)
	cfg.Limits.FD = n + 512
	cfg.ConnMgrHigh = n + 200
	cfg.ConnMgrLow = n + 100
	// The handshake timeout catches silent peers. In a storm of thousands
	// on 2 cores the last handshakes wait for CPU longer than the default
	// 10 s (at N=5000, about 4 % of dialers were cut); give them the time
	// the queue needs, as an operator expecting such storms would.
	cfg.HandshakeTimeout = time.Minute
	// Discovery at its production pace, not the tests' sped-up one: the
	// storm measures a node as deployed.
	d := node.DefaultConfig()
	cfg.AnnounceInterval, cfg.StaleAfter, cfg.RendezvousInterval = d.AnnounceInterval, d.StaleAfter, d.RendezvousInterval
	// Scoring too: the test profile pings every peer every 200 ms.
	cfg.Ping, cfg.ScoreInterval = d.Ping, d.ScoreInterval
}

// stormBare measures N bare connections per second into a baseline host.
func stormBare(b *testing.B, n int) float64 {
	limits := node.Limits{Conns: n + 256, Streams: 8 * (n + 256), FD: n + 512}
	rm, err := node.NewResourceManager(limits)
	require.NoError(b, err)
	cm, err := connmgr.NewConnManager(n+100, n+200)
	require.NoError(b, err)
	server := NewBaselineHost(b, libp2p.ResourceManager(rm), libp2p.ConnectionManager(cm))
	var conns atomic.Int64
	done := make(chan struct{})
	server.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) {
		if conns.Add(1) == int64(n) {
			close(done)
		}
	}})
	target := fmt.Sprintf("%s/p2p/%s", server.Addrs()[0], server.ID())
	elapsed, failures := runStorm(b, target, n, "bare", done, nil)
	require.Zero(b, failures, "bare dialers failed")
	// Closed before the next storm, which must not pay for this one's
	// thousand disconnections.
	require.NoError(b, server.Close())
	return float64(n) / elapsed.Seconds()
}

// stormHandshake measures N verified peers per second into a node, and the
// node's heap per verified peer.
func stormHandshake(b *testing.B, n int) (rate, heapPerPeer float64, failures int) {
	cfg := Config(b, "storm")
	cfg.APIAddr = ""
	stormServerLimits(&cfg, n)
	server := StartNode(b, cfg)
	sub := subscribe(b, server.Host(), new(node.EvtPeer))
	done := make(chan struct{})
	go func() {
		// Read to the end: a subscriber that stops reading blocks the
		// node's event bus once its buffer is full (the disconnections
		// at the end of the storm fill it), and with it the node's Close.
		verified := 0
		for e := range sub.Out() {
			if e.(node.EvtPeer).Kind == node.EventVerified {
				if verified++; verified == n {
					close(done)
				}
			}
		}
	}()
	before := heapInUse()
	target := server.Addrs()[0].String()
	var after uint64
	// The heap is measured while the dialers are still connected.
	elapsed, failures := runStorm(b, target, n, "handshake", done, func() { after = heapInUse() })
	require.NoError(b, sub.Close())
	// Closed before the next storm, which must not pay for this one's
	// thousand disconnections.
	require.NoError(b, server.Close())
	if after < before { // the dialers failed before the peak: no figure
		after = before
	}
	return float64(n) / elapsed.Seconds(), float64(after-before) / float64(n), failures
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// runStorm starts the dialer child, waits until its hosts exist, tells it
// to dial, and times until done closes. Then, if atPeak is set, it calls
// it while every dialer is still connected, and lets the dialers go. It
// returns the elapsed time and the dialers' failures.
func runStorm(b *testing.B, target string, n int, mode string, done <-chan struct{}, atPeak func()) (time.Duration, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStormDialers$", "-test.count=1")
	cmd.Env = append(os.Environ(), envStormTarget+"="+target, envStormN+"="+strconv.Itoa(n), envStormMode+"="+mode)
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Wait() }()
	defer stdin.Close()

	lines := bufio.NewScanner(stdout)
	require.True(b, waitLine(lines, "READY"), "dialer child never got ready")
	start := time.Now()
	_, err = fmt.Fprintln(stdin, "GO")
	require.NoError(b, err)
	result := make(chan int, 1)
	go func() {
		for lines.Scan() {
			if f, ok := strings.CutPrefix(lines.Text(), "FAILURES "); ok {
				v, _ := strconv.Atoi(f)
				result <- v
				return
			}
		}
		result <- n
	}()
	failures := -1 // not reported yet
	select {
	case <-done:
	case failures = <-result:
		if failures > 0 {
			b.Logf("%s storm: %d of %d dialers failed", mode, failures, n)
			return time.Since(start), failures
		}
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			b.Fatalf("%s storm: the server never saw all %d peers", mode, n)
		}
	case <-time.After(5 * time.Minute):
		b.Fatalf("%s storm: timed out", mode)
	}
	elapsed := time.Since(start)
	if failures < 0 {
		failures = <-result
	}
	if atPeak != nil {
		atPeak()
	}
	return elapsed, failures
}

func waitLine(s *bufio.Scanner, want string) bool {
	for s.Scan() {
		if s.Text() == want {
			return true
		}
	}
	return false
}

// TestStormDialers is the dialer child of BenchmarkHandshakeStorm; it does
// nothing in a normal test run.
func TestStormDialers(t *testing.T) {
	target := os.Getenv(envStormTarget)
	if target == "" {
		t.Skip("only runs as BenchmarkHandshakeStorm's dialer process")
	}
	n, err := strconv.Atoi(os.Getenv(envStormN))
	require.NoError(t, err)
	mode := os.Getenv(envStormMode)
	addr, err := ma.NewMultiaddr(target)
	require.NoError(t, err)
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	require.NoError(t, err)

	dialers := make([]*stormDialer, n)
	for i := range dialers {
		dialers[i] = newStormDialer(t, mode)
	}
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	require.True(t, waitLine(in, "GO"))

	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.dial(*ai); err != nil {
				failed.Add(1)
				fmt.Fprintln(os.Stderr, "dialer:", err)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("FAILURES %d\n", failed.Load())
	// Hold the connections until the benchmark is done with them.
	for in.Scan() {
	}
	for _, d := range dialers {
		_ = d.h.Close()
	}
}

type stormDialer struct {
	h  host.Host
	hs *handshake.Service
}

func newStormDialer(t *testing.T, mode string) *stormDialer {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.ConnectionManager(&coreconnmgr.NullConnMgr{}),
		// A node's security and muxers (see nodeTransports), and its TCP
		// transport but for the timeout below.
		libp2p.Security(noise.ID, noise.New), libp2p.Security(tls.ID, tls.New), libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		// The swarm gives a loopback dial 5 s, and so does the TCP
		// transport its connect: a storm of thousands on 2 shared cores
		// needs longer (at 5000, the listener's SYN backlog of 2048
		// overflows, and a dropped SYN is sent again after 1 s, 3 s, 7 s...),
		// and these dialers are the test's load, not the node under test.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport(), tcp.WithConnectionTimeout(stormDialTimeout)),
		libp2p.WithDialTimeout(stormDialTimeout), libp2p.SwarmOpts(swarm.WithDialTimeoutLocal(stormDialTimeout)))
	require.NoError(t, err)
	d := &stormDialer{h: h}
	if mode == "handshake" {
		inst := make([]byte, handshake.InstanceSize)
		_, _ = rand.Read(inst)
		nw := node.PublicNetwork()
		d.hs, err = handshake.New(h, handshake.Config{Key: key, NetworkID: nw.ID, HandshakeKey: nw.HandshakeKey,
			Name: "dialer", Version: node.Version, Instance: inst}, acceptAll{}, nil)
		require.NoError(t, err)
	}
	return d
}

// stormDialTimeout bounds one dialer's connect and handshake.
const stormDialTimeout = 2 * time.Minute

func (d *stormDialer) dial(ai peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(context.Background(), stormDialTimeout)
	defer cancel()
	if err := d.h.Connect(ctx, ai); err != nil {
		return err
	}
	if d.hs == nil {
		return nil
	}
	conns := d.h.Network().ConnsToPeer(ai.ID)
	if len(conns) == 0 {
		return fmt.Errorf("connection lost")
	}
	r := d.hs.Initiate(ctx, conns[0])
	if r.Outcome != handshake.Verified {
		return fmt.Errorf("handshake: %s: %v", r.Outcome, r.Err)
	}
	return nil
}

// acceptAll is the dialers' registry: they trust the server and keep no
// records.
type acceptAll struct{}

func (acceptAll) Begin(network.Conn, bool) error                                { return nil }
func (acceptAll) Admit(network.Conn, handshake.Identity) *handshake.RejectError { return nil }
func (acceptAll) AdmitsAhead(network.Conn, handshake.Identity) bool             { return true }
func (acceptAll) Done(network.Conn, handshake.Report)                           {}
func (acceptAll) Notice(network.Conn, *handshake.RejectError)                   {}

func (acceptAll) Rejecting(network.Conn, *handshake.RejectError) {}
