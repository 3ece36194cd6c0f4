package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"

	"peernode/discovery"
	"peernode/scoring"
)

// exchangeAddrTTL is how long addresses learnt from a peer-exchange answer
// stay in the peerstore: long enough to dial the member, short enough that
// a member gone for good is forgotten.
const exchangeAddrTTL = 10 * time.Minute

// wirePeerExchange serves /peernode/peers/1.0.0 behind the verified-only
// gate.
func (n *Node) wirePeerExchange() {
	n.Handle(discovery.PeersProtocol, func(s network.Stream) {
		signed, connected := n.peersAnswer()
		discovery.ServePeers(s, signed, connected)
	})
}

// peersAnswer is what the node tells an asking peer: its own latest
// announcement first, then the freshest of its table, and the Verified
// members it holds a live connection to.
func (n *Node) peersAnswer() (signed [][]byte, connected []peer.ID) {
	if own := n.ann.Latest(); own != nil {
		signed = append(signed, own)
	}
	signed = append(signed, n.table.Signed(discovery.DefaultExchangeMax-len(signed))...)
	return signed, n.verifiedPeers()
}

// ExchangePeers asks a node for the announcements it holds and the members
// it is connected to (dialling it by node ID if need be, see OpenStream).
// Announcements signed less than StaleAfter ago enter our member table
// (source "exchange"), and their addresses our peerstore. Asking ourselves
// answers from our own table, as a peer would be answered.
func (n *Node) ExchangePeers(ctx context.Context, p peer.ID) (discovery.Peers, error) {
	if p == n.id {
		return discovery.LocalPeers(n.peersAnswer())
	}
	s, err := n.OpenStream(ctx, p, discovery.PeersProtocol)
	if err != nil {
		return discovery.Peers{}, err
	}
	began := time.Now()
	// The stream has its own deadline (ExchangeTimeout); a caller's
	// shorter context ends it sooner.
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	got, err := discovery.ReadPeers(s)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (a crawl's deadline): not the peer's fault.
			return discovery.Peers{}, fmt.Errorf("peer exchange with %s: %w", p, ctx.Err())
		}
		outcome := scoring.Failure
		if errors.Is(err, os.ErrDeadlineExceeded) {
			outcome = scoring.Timeout
		}
		n.book.ReportRequest(p, string(discovery.PeersProtocol), 0, outcome)
		return discovery.Peers{}, err
	}
	n.book.ReportRequest(p, string(discovery.PeersProtocol), time.Since(began), scoring.Success)
	n.learn(got)
	return got, nil
}

// learn keeps what a peer-exchange answer taught: fresh announcements into
// the table, their addresses into the peerstore. A stale announcement
// (signed more than StaleAfter ago) is left out: its node may be gone, and
// taking it in would keep it in tables longer than StaleAfter.
func (n *Node) learn(got discovery.Peers) {
	now := time.Now()
	for i, a := range got.Announcements {
		if a.NodeID == n.id || now.Sub(a.Time) > n.cfg.StaleAfter {
			continue
		}
		n.host.Peerstore().AddAddrs(a.NodeID, a.Addrs, exchangeAddrTTL)
		n.table.Observe(a, got.Signed[i], discovery.SourceExchange)
	}
}

// Crawl walks the network from this node, breadth first along the
// connections each node reports (see discovery.Crawl).
func (n *Node) Crawl(ctx context.Context, cfg discovery.CrawlConfig) (discovery.CrawlResult, error) {
	return n.CrawlFrom(ctx, n.id, cfg)
}

// CrawlFrom walks the network as seen from start: start's connections,
// theirs, and so on. This node asks each one, but is not itself part of
// the walk unless it is start.
func (n *Node) CrawlFrom(ctx context.Context, start peer.ID, cfg discovery.CrawlConfig) (discovery.CrawlResult, error) {
	if start != n.id {
		cfg.Skip = append(append([]peer.ID(nil), cfg.Skip...), n.id)
	}
	return discovery.Crawl(ctx, start, n.ExchangePeers, cfg)
}

// exchangeOnVerify asks a newly verified peer for its table once, so a node
// that joins fills its table at once rather than over an announce interval.
func (n *Node) exchangeOnVerify(p peer.ID) {
	if !n.mightSpeak(p, discovery.PeersProtocol) {
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, discovery.ExchangeTimeout)
		defer cancel()
		// The handshake does not wait for identify: wait for it here, so a
		// peer that does not speak the protocol is not asked only to
		// refuse the stream.
		n.waitIdentified(ctx, p)
		if !n.mightSpeak(p, discovery.PeersProtocol) {
			return
		}
		if _, err := n.ExchangePeers(ctx, p); err != nil && n.ctx.Err() == nil {
			log.Debugw("peer exchange after verification failed", "peer", p, "err", err)
		}
	})
}

// waitIdentified waits, at most until ctx ends, for identify to finish on
// a connection to p.
func (n *Node) waitIdentified(ctx context.Context, p peer.ID) {
	ids, ok := n.host.(interface{ IDService() identify.IDService })
	if !ok {
		return
	}
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	select {
	case <-ids.IDService().IdentifyWait(conns[0]):
	case <-ctx.Done():
	}
}

// mightSpeak reports whether p may speak proto: false only once identify
// has told p's protocols and proto is not among them (a bare libp2p peer
// of a handshake storm), so no stream is opened only to be refused.
func (n *Node) mightSpeak(p peer.ID, proto protocol.ID) bool {
	all, err := n.host.Peerstore().GetProtocols(p)
	if err != nil || len(all) == 0 {
		return true
	}
	return slices.Contains(all, proto)
}
