package scoring

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// PingProto names ping requests in reports.
const PingProto = "ping"

// PingConfig paces the Pinger.
type PingConfig struct {
	// Interval between rounds, jittered ±10 %; the first round starts
	// after a random part of it, so nodes do not ping in lockstep.
	// Default 15 s.
	Interval time.Duration
	// Timeout of one ping; a ping that takes longer counts as a timeout.
	// Default 5 s.
	Timeout time.Duration
	// Concurrency caps the pings in flight. Default 16.
	Concurrency int
}

// DefaultPingConfig returns the defaults.
func DefaultPingConfig() PingConfig {
	return PingConfig{Interval: 15 * time.Second, Timeout: 5 * time.Second, Concurrency: 16}
}

// Validate checks the configuration.
func (c PingConfig) Validate() error {
	if c.Interval <= 0 || c.Timeout <= 0 || c.Concurrency < 1 {
		return fmt.Errorf("%w: ping interval %s, timeout %s, concurrency %d: want positive values",
			ErrBadParams, c.Interval, c.Timeout, c.Concurrency)
	}
	return nil
}

// Pinger pings peers in rounds with libp2p's ping and reports each RTT
// and outcome to a Book. All pings of a round start together, so a local
// outage fails them together and the Book recognises it.
type Pinger struct {
	h      host.Host
	book   *Book
	peers  func() []peer.ID
	cfg    PingConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewPinger pings the peers peers() returns at each round (the node's
// Verified peers).
func NewPinger(h host.Host, book *Book, peers func() []peer.ID, cfg PingConfig) (*Pinger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pinger{h: h, book: book, peers: peers, cfg: cfg, ctx: ctx, cancel: cancel}, nil
}

// Start runs rounds until Close.
func (p *Pinger) Start() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		wait := time.Duration(rng.Float64() * float64(p.cfg.Interval))
		for {
			t := time.NewTimer(wait)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			p.Round(p.ctx)
			wait = time.Duration(float64(p.cfg.Interval) * (0.9 + 0.2*rng.Float64()))
		}
	}()
}

// Close stops the rounds and waits for the one in flight.
func (p *Pinger) Close() error {
	p.once.Do(p.cancel)
	p.wg.Wait()
	return nil
}

// Round pings every peer once, at most Concurrency at a time, and reports
// the results together when the round is over: pings in later waves end a
// Timeout after earlier ones, and a local outage must still show as one
// burst of failures.
func (p *Pinger) Round(ctx context.Context) {
	type result struct {
		id  peer.ID
		rtt time.Duration
		err error
	}
	ids := p.peers()
	results := make([]result, len(ids))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rtt, err := p.Ping(ctx, id)
			results[i] = result{id: id, rtt: rtt, err: err}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // we are stopping: the failures are ours
	}
	for _, r := range results {
		switch {
		case r.err == nil:
			p.book.ReportRequest(r.id, PingProto, r.rtt, Success)
		case errors.Is(r.err, context.DeadlineExceeded):
			p.book.ReportRequest(r.id, PingProto, 0, Timeout)
		default:
			p.book.ReportRequest(r.id, PingProto, 0, Failure)
		}
	}
}

// Ping pings one peer once, within Timeout, without reporting it.
func (p *Pinger) Ping(ctx context.Context, id peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	select {
	case r := <-ping.Ping(ctx, p.h, id):
		if r.Error != nil {
			return 0, fmt.Errorf("ping %s: %w", id, r.Error)
		}
		return r.RTT, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("ping %s: %w", id, ctx.Err())
	}
}
