package node

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Handle registers an application protocol behind the verified-only gate:
// a stream from a node that is not Verified, or that comes over a
// connection on which no handshake verified it, is reset and counted as a
// violation; MaxViolations within ViolationWindow disconnect and ban it.
// (Per connection: another process holding a verified node's key, a clone
// or a thief, gets nothing through the gate before its own handshake
// passes, which it cannot without the network's secret.) Every peernode
// protocol but the handshake is registered this way.
func (n *Node) Handle(proto protocol.ID, handler network.StreamHandler) {
	n.host.SetStreamHandler(proto, n.gate(handler))
}

func (n *Node) gate(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		p := s.Conn().RemotePeer()
		if !n.awaitHandshake(s.Conn()) {
			log.Debugw("stream from an unverified node reset", "peer", p, "proto", s.Protocol())
			_ = s.Reset()
			n.reg.violation(p)
			return
		}
		handler(s)
	}
}

// awaitHandshake reports whether a handshake verified the node on c,
// waiting, while one is in flight on c, for it to settle. The two sides of
// a handshake finish half a round trip apart, so a stream opened by the
// side that finished first may arrive before this side has. The wait is
// bounded by the handshake timeout; without a handshake in flight it
// returns at once.
func (n *Node) awaitHandshake(c network.Conn) bool {
	verified, inFlight, changed := n.reg.connHandshaking(c)
	if verified {
		return true
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	for {
		if verified {
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
		verified, inFlight, changed = n.reg.connHandshaking(c)
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
	for {
		if err := n.ensureVerified(ctx, p); err != nil {
			return nil, err
		}
		c, changed := n.reg.verifiedConn(p)
		if c != nil {
			s, err := newStreamOn(ctx, n.host, c, proto)
			if err != nil {
				return nil, fmt.Errorf("open %s stream to %s: %w", proto, p, err)
			}
			return s, nil
		}
		// The verified connection is closing: wait for the registry to
		// catch up, then for another.
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: its connection closed", ErrNotVerified, p)
		}
	}
}

// negotiationTimeout bounds a protocol negotiation whose context has no
// deadline (libp2p's host uses the same).
const negotiationTimeout = 10 * time.Second

// newStreamOn opens a stream for proto on connection c, the one a
// handshake verified. The host's NewStream would choose among the peer's
// connections itself, preferring the one with the most open streams: while
// a second connection to a verified node is being handshaken (and is about
// to be closed, having lost the tie-break), that is often the new one, and
// the stream dies with it. As the host does, the protocol is negotiated
// with the first write when identify says the peer speaks it, else before
// the stream is returned.
func newStreamOn(ctx context.Context, h host.Host, c network.Conn, proto protocol.ID) (network.Stream, error) {
	s, err := c.NewStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(proto); err != nil {
		_ = s.Reset()
		return nil, err
	}
	if known, _ := h.Peerstore().SupportsProtocols(c.RemotePeer(), proto); len(known) > 0 {
		return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, proto)}, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		// As the host bounds a negotiation without a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, negotiationTimeout)
		defer cancel()
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	err = msmux.SelectProtoOrFail(proto, s)
	if !stop() || err != nil {
		_ = s.Reset()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("negotiating the protocol: %w", err)
	}
	return s, nil
}

// lazyStream is a stream whose protocol negotiation goes out with its
// first write (or its close).
type lazyStream struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }
func (s *lazyStream) Close() error                { return s.rw.Close() }

// CloseWrite sends the negotiation first if nothing was written; an error
// doing so shows on the next read.
func (s *lazyStream) CloseWrite() error {
	if f, ok := s.rw.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	return s.Stream.CloseWrite()
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
