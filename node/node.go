package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
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
	h, err := newHost(&cfg, key)
	if err != nil {
		lock.release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{cfg: cfg, key: key, id: id, host: h, lock: lock, ctx: ctx, cancel: cancel}, nil
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
	if len(n.cfg.Bootstrap) > 0 {
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
		n.cancel()
		var errs []error
		if n.api != nil {
			errs = append(errs, n.api.close())
		}
		errs = append(errs, n.host.Close())
		n.wg.Wait()
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

// Connect dials a peer and waits until the connection is up.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
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
