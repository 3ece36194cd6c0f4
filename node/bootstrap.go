package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrBadBootstrap is wrapped by every malformed bootstrap address.
var ErrBadBootstrap = errors.New("bad bootstrap address")

// ParseBootstrap parses bootstrap multiaddrs. Each must end in /p2p/<id>;
// several addresses of one peer are merged.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w; give a multiaddr ending in /p2p/<node ID>, as printed by that node at start", ErrBadBootstrap, s, err)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return nil, fmt.Errorf("%w %q: it must end in /p2p/<node ID>, as printed by the node at start", ErrBadBootstrap, s)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBootstrap, err)
	}
	for _, ai := range infos {
		if len(ai.Addrs) == 0 {
			return nil, fmt.Errorf("%w /p2p/%s: no address to dial before /p2p/", ErrBadBootstrap, ai.ID)
		}
	}
	return infos, nil
}

// bootstrapLoop dials the bootstrap peers whenever the node has no peer at
// all: at start, and again each time its last connection closes. Rounds
// back off exponentially, with jitter, up to BootstrapBackoffMax, and the
// back-off resets only when a peer is verified: a connection the other
// side drops at once (a ban, a rejection) must not make the loop redial in
// a tight circle. It exits when the node closes.
func (n *Node) bootstrapLoop() {
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtPeerConnectednessChanged), new(EvtPeer)})
	if err != nil {
		log.Errorw("bootstrap: cannot watch connections", "err", err)
		return
	}
	defer sub.Close()
	// The subscription is drained at once, whatever the loop is doing (a
	// back-off sleep, a dial round): a subscriber that stops reading blocks
	// the event bus, and with it the swarm closing connections.
	wake := make(chan struct{}, 1)
	var verified atomic.Bool
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-n.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if ev, isPeer := e.(EvtPeer); isPeer && ev.Kind == EventVerified {
					verified.Store(true)
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() { <-drained }()
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	rounds := 0 // dial rounds since a peer was last verified
	for {
		if verified.Swap(false) {
			rounds = 0
		}
		if len(n.host.Network().Peers()) == 0 {
			if rounds > 0 {
				delay := backoff(rounds-1, n.cfg.BootstrapBackoffMin, n.cfg.BootstrapBackoffMax, rng.Float64())
				log.Debugw("bootstrap: waiting before the next round", "in", delay.Round(time.Millisecond).String())
				if !n.sleep(delay) {
					return
				}
			}
			if len(n.host.Network().Peers()) == 0 {
				rounds++
				if err := n.dialBootstrap(); err != nil {
					if n.ctx.Err() != nil {
						return
					}
					if hint := n.dialHint(err); hint != "" {
						log.Warnw("no bootstrap peer reachable; retrying", "round", rounds, "err", err, "hint", hint)
					} else {
						log.Warnw("no bootstrap peer reachable; retrying", "round", rounds, "err", err)
					}
					continue
				}
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-wake:
		}
	}
}

// dialBootstrap dials every bootstrap peer at once and succeeds if any
// connection comes up.
func (n *Node) dialBootstrap() error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   bool
	)
	// This loop has its own back-off; bypass the swarm's per-address dial
	// back-off, which would otherwise refuse redials for 5 s or more after a
	// bootstrap peer was down.
	ctx := network.WithForceDirectDial(n.ctx, "bootstrap")
	for _, ai := range n.bootstrapPeers() {
		if ai.ID == n.id {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ok = true
			log.Infow("connected to bootstrap peer", "peer", ai.ID)
		}()
	}
	wg.Wait()
	if ok || len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// sleep waits d or until the node closes; it reports false on close.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff returns the delay after the given number of consecutive failures:
// lo doubled per failure, capped at hi, then spread by ±20 % using u, a
// uniform number in [0, 1), so nodes that lost a peer together do not retry
// in lockstep.
func backoff(failures int, lo, hi time.Duration, u float64) time.Duration {
	d := lo
	for i := 0; i < failures && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * (0.8 + 0.4*u))
}

// pnetMismatch are what a dial through libp2p's private network looks like
// when the two ends hold different secrets (or one holds none): each end
// decrypts the other's bytes into noise, so the security negotiation reads
// garbage, or waits for bytes that make sense until the dial times out.
var pnetMismatch = []string{
	"failed to negotiate security protocol",
	"message did not have trailing newline",
	"incoming message was too large",
	"privnet: could not read full nonce",
	"context deadline exceeded",
}

// dialHint says what a failed dial may mean to an operator, or "".
func (n *Node) dialHint(err error) string {
	if err == nil || !n.cfg.usesPnet() {
		return ""
	}
	const hint = "if the peer is up, this is how a node with another secret, or none, fails on a private network: " +
		"compare the secret fingerprints ('peernode id' on each node, or the daemon's start banner)"
	msg := err.Error()
	for _, m := range pnetMismatch {
		if strings.Contains(msg, m) {
			return hint
		}
	}
	return ""
}
