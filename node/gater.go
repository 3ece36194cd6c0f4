package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater is the libp2p connection gater that enforces temporary bans: a
// banned peer can neither connect to us nor be dialled by us. It also holds
// back our own dials to a peer that asked us to retry later.
type gater struct {
	base, max time.Duration
	now       func() time.Time

	mu    sync.Mutex
	bans  map[peer.ID]*ban
	holds map[peer.ID]time.Time // no dials to the peer until then
}

type ban struct {
	until time.Time
	// strikes counts bans in a row; each doubles the next one.
	strikes int
}

func newGater(base, max time.Duration, now func() time.Time) *gater {
	return &gater{base: base, max: max, now: now, bans: map[peer.ID]*ban{}, holds: map[peer.ID]time.Time{}}
}

// ban bans p for base doubled per previous strike, capped at max, and
// returns the duration. Strikes are forgotten once a peer has stayed clean
// for max after its last ban.
func (g *gater) ban(p peer.ID) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	b := g.bans[p]
	if b == nil || now.Sub(b.until) > g.max {
		b = &ban{}
		g.bans[p] = b
	}
	d := g.base
	for i := 0; i < b.strikes && d < g.max; i++ {
		d *= 2
	}
	d = min(d, g.max)
	b.strikes++
	if until := now.Add(d); until.After(b.until) {
		b.until = until
	}
	return d
}

// unban lifts p's ban (an operator approved it again).
func (g *gater) unban(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.bans, p)
	delete(g.holds, p)
}

// banned reports whether p is banned and for how much longer.
func (g *gater) banned(p peer.ID) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.bans[p]
	if b == nil {
		return false, 0
	}
	left := b.until.Sub(g.now())
	return left > 0, max(left, 0)
}

// hold stops our dials to p for d: it asked us to retry later.
func (g *gater) hold(p peer.ID, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holds[p] = g.now().Add(d)
}

// release drops a hold on dials to p.
func (g *gater) release(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.holds, p)
}

func (g *gater) held(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.holds[p]
	if ok && !g.now().Before(until) {
		delete(g.holds, p)
		return false
	}
	return ok
}

func (g *gater) InterceptPeerDial(p peer.ID) bool {
	b, _ := g.banned(p)
	return !b && !g.held(p)
}

func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	b, _ := g.banned(p)
	return !b
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
