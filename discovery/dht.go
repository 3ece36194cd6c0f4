package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

var log = logging.Logger("peernode/discovery")

// DHTMode is the DHT's mode.
type DHTMode string

// DHT modes.
const (
	DHTServer DHTMode = "server" // answers queries: the default in a private network
	DHTClient DHTMode = "client" // only asks
	DHTAuto   DHTMode = "auto"   // server when publicly reachable
)

// ParseDHTMode parses "server", "client" or "auto".
func ParseDHTMode(s string) (DHTMode, error) {
	switch DHTMode(s) {
	case DHTServer, DHTClient, DHTAuto:
		return DHTMode(s), nil
	}
	return "", fmt.Errorf("DHT mode %q: want server, client or auto", s)
}

// RendezvousConfig configures the DHT and the rendezvous loop.
type RendezvousConfig struct {
	// NetworkID names the DHT protocol prefix /peernode/<id> and the
	// rendezvous namespace.
	NetworkID string
	Mode      DHTMode
	// Interval between rounds of advertising ourselves and looking for
	// other members; jittered ±10 %. Advertisements are renewed well
	// before the DHT's provider records expire (48 h).
	Interval time.Duration
	// Want is how many connections the loop tries to keep: it dials found
	// members while the node has fewer (the connection manager's low water
	// mark).
	Want int
	// Connect dials a found member (through the node, so the handshake and
	// its gate apply).
	Connect func(ctx context.Context, ai peer.AddrInfo) error
	// Admit, if set, filters the routing table: only peers it admits (the
	// node's Verified peers) are kept and asked. A peer admitted later is
	// taken in on its next EvtPeerProtocolsUpdated.
	Admit func(peer.ID) bool
}

// Rendezvous runs the network's private DHT and finds other members
// through it, beyond the bootstrap peers.
type Rendezvous struct {
	cfg    RendezvousConfig
	host   host.Host
	dht    *dht.IpfsDHT
	rd     *drouting.RoutingDiscovery
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ProtocolPrefix is the network's DHT protocol prefix: the DHT speaks
// <prefix>/kad/1.0.0, so DHTs of different networks never mix.
func ProtocolPrefix(networkID string) protocol.ID {
	return protocol.ID("/peernode/" + networkID)
}

// Namespace is the network's rendezvous namespace.
func Namespace(networkID string) string { return "peernode/" + networkID + "/members" }

// NewRendezvous starts the DHT on h. Start begins the rendezvous loop.
func NewRendezvous(h host.Host, cfg RendezvousConfig) (*Rendezvous, error) {
	if cfg.NetworkID == "" || cfg.Interval <= 0 || cfg.Connect == nil {
		return nil, errors.New("rendezvous: network ID, interval and connect function are required")
	}
	mode := dht.ModeServer
	switch cfg.Mode {
	case DHTClient:
		mode = dht.ModeClient
	case DHTAuto:
		mode = dht.ModeAuto
	}
	opts := []dht.Option{dht.ProtocolPrefix(ProtocolPrefix(cfg.NetworkID)), dht.Mode(mode)}
	if cfg.Admit != nil {
		opts = append(opts, dht.RoutingTableFilter(func(_ any, p peer.ID) bool { return cfg.Admit(p) }))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Rendezvous{cfg: cfg, host: h, dht: d, rd: drouting.NewRoutingDiscovery(d), ctx: ctx, cancel: cancel}, nil
}

// DHT is the underlying DHT, for peer routing (FindPeer).
func (r *Rendezvous) DHT() *dht.IpfsDHT { return r.dht }

// Start runs the loop: advertise ourselves, find members, dial them while
// we hold fewer than Want connections. The first round starts after a
// random stagger so nodes started together do not move in lockstep.
func (r *Rendezvous) Start() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.loop()
	}()
}

func (r *Rendezvous) loop() {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	jitter := func(d time.Duration) time.Duration { return time.Duration(float64(d) * (0.9 + 0.2*rng.Float64())) }
	wait := time.Duration(rng.Float64() * float64(r.cfg.Interval) / 4)
	for {
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.round()
		wait = jitter(r.cfg.Interval)
	}
}

// round advertises and looks once.
func (r *Rendezvous) round() {
	ns := Namespace(r.cfg.NetworkID)
	if len(r.dht.RoutingTable().ListPeers()) == 0 {
		_ = r.dht.Bootstrap(r.ctx)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Interval)
	defer cancel()
	if _, err := r.rd.Advertise(ctx, ns); err != nil && r.ctx.Err() == nil {
		log.Debugw("rendezvous: advertise failed", "err", err)
	}
	if len(r.host.Network().Peers()) >= r.cfg.Want {
		return
	}
	found, err := r.rd.FindPeers(ctx, ns)
	if err != nil {
		log.Debugw("rendezvous: find failed", "err", err)
		return
	}
	for ai := range found {
		if ai.ID == r.host.ID() || len(ai.Addrs) == 0 || r.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		if len(r.host.Network().Peers()) >= r.cfg.Want {
			continue // drain the channel so the query ends
		}
		if err := r.cfg.Connect(ctx, ai); err != nil {
			log.Debugw("rendezvous: dial failed", "peer", ai.ID, "err", err)
		}
	}
}

// Close stops the loop and the DHT.
func (r *Rendezvous) Close() error {
	r.cancel()
	r.wg.Wait()
	return r.dht.Close()
}

// TopicDiscovery is the DHT's routing discovery for pubsub (its
// WithDiscovery option): pubsub advertises the topics it joins and, while a
// topic has too few peers, looks for more and dials them. Lookups answer
// nothing once the node holds Want connections, so pubsub keeps to the same
// connection budget as the rendezvous loop.
func (r *Rendezvous) TopicDiscovery() discovery.Discovery { return budgeted{r} }

type budgeted struct{ r *Rendezvous }

func (b budgeted) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	return b.r.rd.Advertise(ctx, ns, opts...)
}

func (b budgeted) FindPeers(ctx context.Context, ns string, opts ...discovery.Option) (<-chan peer.AddrInfo, error) {
	if len(b.r.host.Network().Peers()) >= b.r.cfg.Want {
		none := make(chan peer.AddrInfo)
		close(none)
		return none, nil
	}
	return b.r.rd.FindPeers(ctx, ns, opts...)
}
