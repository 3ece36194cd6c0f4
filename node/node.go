package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/discovery"
	"peernode/protocols/handshake"
	"peernode/scoring"
)

// Node is one peernode: a libp2p host with its identity, network and control
// API. Create it with New, then Start; Close releases everything.
type Node struct {
	cfg  Config
	key  crypto.PrivKey
	id   peer.ID
	host host.Host
	lock *dirLock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Start launched

	api *apiServer
	// metrics serves /metrics without a token on MetricsAddr, if set.
	metrics *metricsServer

	gater *gater
	reg   *registry
	trust *handshake.Trust
	hs    *handshake.Service
	rv    *discovery.Rendezvous
	table *discovery.Table
	ann   *discovery.Announcer
	mdns  interface{ Close() error }

	book   *scoring.Book
	pinger *scoring.Pinger
	blobs  *blobs
	// events queues the registry's peer events (see asyncEmitter).
	events *asyncEmitter
	// tableDirty is set when the member table changes and cleared when it
	// is saved.
	tableDirty atomic.Bool

	// spawnMu guards closing and wg.Add, so nothing is spawned once Close
	// has begun waiting.
	spawnMu sync.Mutex
	closing bool

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, takes the data directory (one node per directory),
// loads or creates the identity key and builds the host. It does not listen
// yet: Start does.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ensureDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	key, created, err := LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		lock.release()
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("derive node ID: %w", err)
	}
	if created {
		log.Infow("created a new node identity", "node", id, "dir", cfg.DataDir)
	}
	trust, warning, err := handshake.OpenTrust(cfg.DataDir, cfg.Trust, handshake.TrustOptions{MaxPending: cfg.MaxPending, PendingTTL: cfg.PendingTTL})
	if err != nil {
		lock.release()
		return nil, err
	}
	if warning != nil {
		log.Errorw("trust store", "err", warning)
	}
	g := newGater(cfg.BanDuration, cfg.MaxBanDuration, time.Now)
	h, err := newHost(&cfg, key, g)
	if err != nil {
		lock.release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, key: key, id: id, host: h, lock: lock, ctx: ctx, cancel: cancel, gater: g, trust: trust}
	if err := n.wire(); err != nil {
		_ = n.Close()
		return nil, err
	}
	liveNodes.add(n)
	return n, nil
}

// wire connects the registry, the handshake and the host's notifications.
func (n *Node) wire() error {
	em, err := n.host.EventBus().Emitter(new(EvtPeer))
	if err != nil {
		return fmt.Errorf("peer event emitter: %w", err)
	}
	n.events = newAsyncEmitter(em)
	n.reg = newRegistry(n.id, &n.cfg, n.gater, n.events, n.closeConn)
	instance := make([]byte, handshake.InstanceSize)
	if _, err := rand.Read(instance); err != nil {
		return err
	}
	n.hs, err = handshake.New(n.host, handshake.Config{
		Key: n.key, NetworkID: n.cfg.Network.ID, HandshakeKey: n.cfg.Network.HandshakeKey,
		Name: n.cfg.Name, Role: n.cfg.Role, Version: Version, Justification: n.cfg.Justification,
		Instance: instance, ListenAddrs: n.host.Addrs, Timeout: n.cfg.HandshakeTimeout,
		MaxClockSkew: n.cfg.MaxClockSkew,
	}, n.reg, n.trust)
	if err != nil {
		return err
	}
	n.rv, err = discovery.NewRendezvous(n.host, discovery.RendezvousConfig{
		NetworkID: n.cfg.Network.ID, Mode: n.cfg.DHTMode, Interval: n.cfg.RendezvousInterval,
		Want: n.cfg.ConnMgrLow, Connect: n.connect, Admit: n.reg.isVerified,
	})
	if err != nil {
		return err
	}
	if err := n.wireScoring(); err != nil {
		return err
	}
	if err := n.wireAnnouncements(); err != nil {
		return err
	}
	n.wirePeerExchange()
	n.wireFarewells()
	if err := n.wireStorage(); err != nil {
		return err
	}
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF:    n.onConnected,
		DisconnectedF: func(_ network.Network, c network.Conn) { n.reg.disconnected(c) },
	})
	return nil
}

// onConnected registers a connection; on one we dialled, we start the
// handshake at once, without waiting for identify. Notifiee callbacks must
// not block: the handshake runs on its own goroutine.
func (n *Node) onConnected(_ network.Network, c network.Conn) {
	n.reg.connected(c)
	if c.Stat().Direction == network.DirOutbound {
		n.spawn(func() { n.hs.Initiate(n.ctx, c) })
	}
}

// spawn runs f on a goroutine that Close waits for; once Close has begun
// it runs nothing and reports false.
func (n *Node) spawn(f func()) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// closeConn closes c off the caller's goroutine: callers hold no lock but
// may be running on c's own stream.
func (n *Node) closeConn(c network.Conn) {
	if !n.spawn(func() { _ = c.Close() }) {
		_ = c.Close()
	}
}

// Start listens on the configured addresses, starts the control API and the
// bootstrap loop. If Start fails, call Close.
func (n *Node) Start() error {
	if err := listen(n.host, &n.cfg); err != nil {
		return err
	}
	if n.cfg.APIAddr != "" {
		srv, err := startAPI(n)
		if err != nil {
			return err
		}
		n.api = srv
	}
	if n.cfg.MetricsAddr != "" {
		srv, err := startMetrics(n.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		n.metrics = srv
	}
	n.rv.Start()
	n.ann.Start()
	if n.cfg.MDNS {
		if err := n.startMDNS(); err != nil {
			return fmt.Errorf("start mDNS: %w", err)
		}
	}
	n.startPeerEvents()
	n.saveMembersLoop()
	n.pinger.Start()
	n.scoreLoop()
	n.provideLoop()
	if len(n.bootstrapPeers()) > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.bootstrapLoop()
		}()
	}
	log.Infow("node started", "node", n.id, "network", n.cfg.Network.ID, "addrs", n.Addrs())
	return nil
}

// Close stops the API and every goroutine, closes the host and releases the
// data directory. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		liveNodes.remove(n)
		n.cancel()
		n.spawnMu.Lock()
		n.closing = true
		n.spawnMu.Unlock()
		var errs []error
		if n.api != nil {
			errs = append(errs, n.api.close())
		}
		if n.metrics != nil {
			errs = append(errs, n.metrics.close())
		}
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		if n.pinger != nil {
			errs = append(errs, n.pinger.Close())
		}
		if n.ann != nil {
			errs = append(errs, n.ann.Close())
		}
		if n.rv != nil {
			errs = append(errs, n.rv.Close())
		}
		if n.table != nil {
			n.table.Close()
			errs = append(errs, n.table.Save(n.membersPath()))
		}
		if n.book != nil {
			errs = append(errs, n.saveScores())
		}
		if n.hs != nil {
			errs = append(errs, n.hs.Close())
		}
		errs = append(errs, n.host.Close())
		n.wg.Wait()
		if n.events != nil {
			errs = append(errs, n.events.Close())
		}
		if n.blobs != nil {
			errs = append(errs, n.blobs.store.Close())
		}
		n.lock.release()
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// ID is the node ID: the peer ID of the node key.
func (n *Node) ID() peer.ID { return n.id }

// Host is the underlying libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Config returns the configuration the node runs with.
func (n *Node) Config() Config { return n.cfg }

// APIAddr is the address the control API listens on, or "" when disabled
// or not started.
func (n *Node) APIAddr() string {
	if n.api == nil {
		return ""
	}
	return n.api.addr
}

// Addrs returns the node's full multiaddrs, each ending in /p2p/<id>, ready
// to be used as another node's bootstrap address.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.id, Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Connect dials a peer and waits until the connection is up. It is an
// operator's explicit request, so it overrides a retry-after hint the peer
// sent earlier; a peer this node banned is refused at once, with how to
// lift the ban.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	n.gater.release(ai.ID)
	if b, left := n.gater.banned(ai.ID); b {
		return fmt.Errorf("connect to %s: this node has banned it for %s more; 'peernode trust allow %s' lifts the ban",
			ai.ID, left.Round(time.Second), ai.ID)
	}
	// An operator asking now means now: past the swarm's dial back-off,
	// which would answer "dial backoff" instead of why the last dial failed.
	err := n.connect(network.WithForceDirectDial(ctx, "operator"), ai)
	if hint := n.dialHint(err); hint != "" {
		err = fmt.Errorf("%w (%s)", err, hint)
	}
	return err
}

// connect dials a peer, honouring retry-after hints.
func (n *Node) connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.id {
		return fmt.Errorf("connect to %s: that is this node", ai.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect to %s: %w", ai.ID, err)
	}
	return nil
}
