package node

import (
	"context"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Handle registers an application protocol behind the verified-only gate:
// a stream from a node that is not Verified is reset and counted as a
// violation; MaxViolations within ViolationWindow disconnect and ban it.
// Every peernode protocol but the handshake is registered this way.
func (n *Node) Handle(proto protocol.ID, handler network.StreamHandler) {
	n.host.SetStreamHandler(proto, n.gate(handler))
}

func (n *Node) gate(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		p := s.Conn().RemotePeer()
		if !n.reg.isVerified(p) && !n.awaitHandshake(p) {
			log.Debugw("stream from an unverified node reset", "peer", p, "proto", s.Protocol())
			_ = s.Reset()
			n.reg.violation(p)
			return
		}
		handler(s)
	}
}

// awaitHandshake waits, while a handshake with p is in flight, for it to
// settle, and reports whether p ended Verified. The two sides of a
// handshake finish half a round trip apart, so a stream opened by the side
// that finished first may arrive before this side has. The wait is bounded
// by the handshake timeout; without a handshake in flight it returns at
// once.
func (n *Node) awaitHandshake(p peer.ID) bool {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	for {
		st, inFlight, changed := n.reg.handshaking(p)
		if st == StatusVerified {
			return true
		}
		if !inFlight {
			return false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// Unhandle removes a protocol registered with Handle.
func (n *Node) Unhandle(proto protocol.ID) {
	n.host.RemoveStreamHandler(proto)
}

// OpenStream opens a stream to a node by its ID. A Verified node gets the
// stream at once; a node connected but not Verified (pending, rejected)
// gets ErrNotVerified at once; a node not connected is dialled (known
// addresses), and the stream opens once it is Verified, within ctx's
// deadline: else ErrUnreachable or ErrNotVerified.
func (n *Node) OpenStream(ctx context.Context, p peer.ID, proto protocol.ID) (network.Stream, error) {
	if p == n.id {
		return nil, fmt.Errorf("open stream: %s is this node", p)
	}
	if err := n.ensureVerified(ctx, p); err != nil {
		return nil, err
	}
	s, err := n.host.NewStream(ctx, p, proto)
	if err != nil {
		return nil, fmt.Errorf("open %s stream to %s: %w", proto, p, err)
	}
	return s, nil
}

func (n *Node) ensureVerified(ctx context.Context, p peer.ID) error {
	st, connected, _ := n.reg.standing(p)
	switch {
	case st == StatusVerified:
		return nil
	case connected && (st == StatusPending || st == StatusError || st == StatusClosing):
		return fmt.Errorf("%w: %s is %s", ErrNotVerified, p, st)
	case !connected:
		ai := peer.AddrInfo{ID: p}
		if len(n.host.Peerstore().Addrs(p)) == 0 && n.rv != nil {
			// No known address: ask the DHT.
			found, err := n.rv.DHT().FindPeer(ctx, p)
			if err != nil {
				return fmt.Errorf("%w: %s: no known address, and the DHT did not find one: %w", ErrUnreachable, p, err)
			}
			ai = found
		}
		if err := n.connect(ctx, ai); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, p, err)
		}
	}
	return n.reg.waitVerified(ctx, p)
}

// Join connects to a peer and waits until its handshake settles: Verified
// or Pending (awaiting an operator on either side) is success; a rejection,
// a closed connection or the deadline is an ErrNotVerified that carries the
// reason.
func (n *Node) Join(ctx context.Context, ai peer.AddrInfo) (Status, error) {
	if err := n.Connect(ctx, ai); err != nil {
		return 0, err
	}
	for {
		st, connected, changed := n.reg.standing(ai.ID)
		switch {
		case st == StatusVerified || st == StatusPending:
			return st, nil
		case !connected || st == StatusError || st == StatusClosing:
			return st, fmt.Errorf("%w: %s: %s", ErrNotVerified, ai.ID, n.lastFailure(ai.ID))
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, fmt.Errorf("%w: %s is still %s", ErrNotVerified, ai.ID, st)
		}
	}
}

func (n *Node) lastFailure(p peer.ID) string {
	info, _ := n.reg.info(p)
	if info.LastFailure == nil {
		return "the connection closed before the handshake finished (refused or banned by the peer?)"
	}
	return fmt.Sprintf("%s: %s", info.LastFailure.Reason, info.LastFailure.Message)
}

// Send opens a stream to a node by its ID (see OpenStream), writes payload
// and closes the stream.
func (n *Node) Send(ctx context.Context, p peer.ID, proto protocol.ID, payload []byte) error {
	s, err := n.OpenStream(ctx, p, proto)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(payload); err != nil {
		_ = s.Reset()
		return fmt.Errorf("send to %s: %w", p, err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("send to %s: %w", p, err)
	}
	// Wait for the receiver to close its side, so a Send that returns nil
	// was read (or at least not refused by the gate).
	if _, err := io.Copy(io.Discard, io.LimitReader(s, 1)); err != nil {
		_ = s.Reset()
		return fmt.Errorf("send to %s: %w", p, err)
	}
	return s.Close()
}

// PeerInfo returns the registry entry of a node.
func (n *Node) PeerInfo(p peer.ID) (PeerInfo, bool) { return n.reg.info(p) }

// Peers returns every node in the registry.
func (n *Node) Peers() []PeerInfo { return n.reg.all() }
