package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"peernode/discovery"
	"peernode/internal/atomicfile"
)

// membersFileName keeps the member table across restarts.
const membersFileName = "members.json"

func (n *Node) membersPath() string { return filepath.Join(n.cfg.DataDir, membersFileName) }

// wireAnnouncements loads the saved member table and joins the network's
// announcement topic.
func (n *Node) wireAnnouncements() error {
	n.table = discovery.NewTable(n.cfg.StaleAfter, nil, func(ev discovery.Event) {
		n.tableDirty.Store(true)
		n.scoreTableEvent(ev)
	})
	loaded, skipped, err := n.table.Load(n.membersPath())
	if err != nil || skipped > 0 {
		// The file will be rewritten: keep what it held for the operator.
		aside, aerr := atomicfile.CopyAside(n.membersPath(), time.Now())
		if aerr != nil {
			return fmt.Errorf("member table %s is unreadable (%v) and cannot be copied aside: %w", n.membersPath(), err, aerr)
		}
		if err != nil {
			log.Warnw("member table unreadable; starting empty (bootstrap peers still apply)", "err", err, "kept_as", aside)
		} else {
			log.Warnw("member table: skipped unreadable entries", "loaded", loaded, "skipped", skipped, "kept_as", aside)
		}
	}
	n.ann, err = discovery.NewAnnouncer(n.host, discovery.AnnouncerConfig{
		Key: n.key, NetworkID: n.cfg.Network.ID, Interval: n.cfg.AnnounceInterval,
		Self: n.selfAnnouncement, Table: n.table, IsVerified: n.reg.isVerified,
		Discovery: n.rv.TopicDiscovery(),
		AppScore:  n.book.Score,
		Rejected:  func(from peer.ID, _ string) { n.book.Penalize(from, penaltyAnnouncement) },
		Farewell:  n.sayFarewell,
	})
	return err
}

// sayFarewell hands our leaving announcement to every connected member
// that speaks LeaveProtocol, and waits for them (see discovery.Farewell).
func (n *Node) sayFarewell(ctx context.Context, signed []byte) {
	var to []peer.ID
	for _, p := range n.verifiedPeers() {
		if n.mightSpeak(p, discovery.LeaveProtocol) {
			to = append(to, p)
		}
	}
	acked := discovery.SendFarewells(ctx, to, signed, func(ctx context.Context, p peer.ID) (network.Stream, error) {
		c, _ := n.reg.verifiedConn(p)
		if c == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotVerified, p)
		}
		return newStreamOn(ctx, n.host, c, discovery.LeaveProtocol)
	})
	log.Debugw("farewells acknowledged", "members", len(to), "acknowledged", acked)
}

// wireFarewells serves LeaveProtocol behind the verified-only gate: a
// member that shuts down tells us directly.
func (n *Node) wireFarewells() {
	n.Handle(discovery.LeaveProtocol, func(s network.Stream) {
		discovery.ServeFarewell(s, n.table.LastSeq,
			func(a discovery.Announcement, signed []byte) { n.table.Observe(a, signed, discovery.SourceFarewell) },
			func(from peer.ID, _ string) { n.book.Penalize(from, penaltyAnnouncement) })
	})
}

// membersSaveInterval is how often a changed member table is written out,
// so a crash loses at most that much of it.
const membersSaveInterval = 30 * time.Second

// saveMembersLoop writes the member table whenever it changed, and the
// scores, every membersSaveInterval; Close writes both a last time.
func (n *Node) saveMembersLoop() {
	n.spawn(func() {
		t := time.NewTicker(membersSaveInterval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
			if n.tableDirty.Swap(false) {
				if err := n.table.Save(n.membersPath()); err != nil {
					n.tableDirty.Store(true)
					log.Warnw("member table not saved; retrying later", "path", n.membersPath(), "err", err)
				}
			}
			if err := n.saveScores(); err != nil {
				log.Warnw("scores not saved; retrying later", "path", n.scoresPath(), "err", err)
			}
		}
	})
}

// selfAnnouncement is what the node says about itself.
func (n *Node) selfAnnouncement() discovery.Announcement {
	a := discovery.Announcement{Name: n.cfg.Name, Role: string(n.cfg.Role), Addrs: n.host.Addrs(), Version: Version}
	if n.blobs != nil {
		count, bytes := n.blobs.store.Usage()
		a.BlobCount, a.BytesStored = uint64(count), uint64(bytes)
	}
	return a
}

// gossipProtocols are offered to pubsub again when a peer is verified.
var gossipProtocols = []protocol.ID{pubsub.GossipSubID_v13, pubsub.GossipSubID_v12, pubsub.GossipSubID_v11}

// startPeerEvents follows the registry: a verified node joins the member
// table, and pubsub is told to consider it again (it ignored the node while
// it was unverified).
func (n *Node) startPeerEvents() {
	sub, err := n.host.EventBus().Subscribe(new(EvtPeer))
	if err != nil {
		log.Errorw("cannot follow peer events", "err", err)
		return
	}
	em, err := n.host.EventBus().Emitter(new(event.EvtPeerProtocolsUpdated))
	if err != nil {
		_ = sub.Close()
		log.Errorw("cannot nudge pubsub", "err", err)
		return
	}
	n.spawn(func() {
		defer sub.Close()
		defer em.Close()
		for {
			select {
			case <-n.ctx.Done():
				return
			case e := <-sub.Out():
				ev := e.(EvtPeer)
				n.scorePeerEvent(ev)
				if ev.Kind != EventVerified {
					continue
				}
				if info, ok := n.reg.info(ev.Peer); ok {
					n.table.Verified(ev.Peer, info.Identity.Name, string(info.Identity.Role), info.Identity.ListenAddrs)
				}
				n.exchangeOnVerify(ev.Peer)
				// Pubsub and the DHT ignored the peer while it was
				// unverified: tell them again. Pubsub is offered only the
				// protocols the peer said (identify) it speaks; the DHT
				// reads the peerstore. If identify has not finished yet,
				// both hear of the peer from identify itself, once it is
				// verified.
				if known, err := n.host.Peerstore().GetProtocols(ev.Peer); err == nil && len(known) > 0 {
					supported, _ := n.host.Peerstore().SupportsProtocols(ev.Peer, gossipProtocols...)
					_ = em.Emit(event.EvtPeerProtocolsUpdated{Peer: ev.Peer, Added: supported})
				}
			}
		}
	})
}

// bootstrapPeers are the configured bootstrap peers, then the members the
// table remembers: a restarted node finds its network again without
// --bootstrap.
func (n *Node) bootstrapPeers() []peer.AddrInfo {
	out := append([]peer.AddrInfo(nil), n.cfg.Bootstrap...)
	seen := map[peer.ID]bool{n.id: true}
	for _, ai := range out {
		seen[ai.ID] = true
	}
	for _, m := range n.table.Members() {
		if !seen[m.NodeID] && len(m.Announcement.Addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: m.NodeID, Addrs: m.Announcement.Addrs})
			seen[m.NodeID] = true
		}
	}
	return out
}

// Members returns the member table.
func (n *Node) Members() []discovery.Member { return n.table.Members() }

// Announcer is the node's announcement publisher (for tests and scores).
func (n *Node) Announcer() *discovery.Announcer { return n.ann }
