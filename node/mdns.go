package node

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsService names the network's mDNS service, so nodes of other networks
// on the LAN are not dialled (they would fail the handshake anyway).
func mdnsService(networkID string) string { return "_peernode-" + networkID + "._udp" }

// startMDNS finds members on the local network by multicast DNS (only with
// Config.MDNS): each node found is dialled, and the handshake decides.
func (n *Node) startMDNS() error {
	svc := mdns.NewMdnsService(n.host, mdnsService(n.cfg.Network.ID), mdnsFound{n})
	if err := svc.Start(); err != nil {
		return err
	}
	n.mdns = svc
	return nil
}

type mdnsFound struct{ n *Node }

// HandlePeerFound dials a node mDNS found, off mDNS's goroutine.
func (f mdnsFound) HandlePeerFound(ai peer.AddrInfo) {
	n := f.n
	if ai.ID == n.id || n.isConnected(ai.ID) {
		return
	}
	n.spawn(func() {
		if err := n.connect(n.ctx, ai); err != nil && n.ctx.Err() == nil {
			log.Debugw("mdns: dial failed", "peer", ai.ID, "err", err)
		}
	})
}

func (n *Node) isConnected(p peer.ID) bool { return len(n.host.Network().ConnsToPeer(p)) > 0 }
