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
		if !n.reg.isVerified(p) {
			log.Debugw("stream from an unverified node reset", "peer", p, "proto", s.Protocol())
			_ = s.Reset()
			n.reg.violation(p)
			return
		}
		handler(s)
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
		if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, p, err)
		}
	}
	return n.reg.waitVerified(ctx, p)
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
