package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/protocols/handshake"
)

// ErrNotPending is returned by Approve and Reject for a node that awaits no
// approval.
var ErrNotPending = errors.New("node is not awaiting approval")

// TrustRecords lists the operator's decisions.
func (n *Node) TrustRecords() []handshake.TrustRecord { return n.trust.Records() }

// PendingRequests lists the nodes awaiting approval (manual policy).
func (n *Node) PendingRequests() []handshake.PendingRequest { return n.trust.Pending() }

// TrustPolicy is the node's trust policy.
func (n *Node) TrustPolicy() handshake.Policy { return n.trust.Policy() }

// Approve accepts a pending node: it becomes Verified on both sides without
// reconnecting, by a new handshake on its live connection.
func (n *Node) Approve(p peer.ID, reason string) (handshake.TrustRecord, error) {
	if !n.trust.IsPending(p) {
		return handshake.TrustRecord{}, fmt.Errorf("approve %s: %w", p, ErrNotPending)
	}
	if reason == "" {
		reason = "approved by an operator"
	}
	return n.Allow(p, reason)
}

// Allow records that p may join (allowlist, or approval ahead of time),
// lifts any ban, and verifies p again if it is connected and pending.
func (n *Node) Allow(p peer.ID, reason string) (handshake.TrustRecord, error) {
	if reason == "" {
		reason = "allowed by an operator"
	}
	rec, err := n.trust.Set(p, handshake.DecisionAllow, reason)
	if err != nil {
		return rec, err
	}
	n.gater.unban(p)
	// Only a pending node is re-verified in place; any other state (a
	// revoked node's connection still closing, say) waits for a new
	// connection.
	info, ok := n.reg.info(p)
	if !ok || info.Status != StatusPending || len(info.Conns) == 0 {
		return rec, nil
	}
	c := info.Conns[0]
	n.spawn(func() { n.hs.Initiate(n.ctx, c) })
	return rec, nil
}

// Reject refuses a pending node: it is told, disconnected and banned.
func (n *Node) Reject(p peer.ID, reason string) (handshake.TrustRecord, error) {
	if !n.trust.IsPending(p) {
		return handshake.TrustRecord{}, fmt.Errorf("reject %s: %w", p, ErrNotPending)
	}
	if reason == "" {
		reason = "rejected by an operator"
	}
	return n.Deny(p, reason)
}

// Revoke withdraws trust from a node that had it: the node is told, its
// connections dropped, and it stays banned until allowed again.
func (n *Node) Revoke(p peer.ID, reason string) (handshake.TrustRecord, error) {
	info, known := n.reg.info(p)
	allowed := false
	for _, r := range n.trust.Records() {
		allowed = allowed || (r.NodeID == p && r.Decision == handshake.DecisionAllow)
	}
	if !allowed && (!known || info.Status != StatusVerified) {
		return handshake.TrustRecord{}, fmt.Errorf("revoke %s: %w: neither allowed nor verified", p, handshake.ErrUnknownNode)
	}
	if reason == "" {
		reason = "revoked by an operator"
	}
	rec, err := n.Deny(p, reason)
	if err != nil {
		return rec, err
	}
	return rec, n.reg.emitter.Emit(EvtPeer{Peer: p, Kind: EventRevoked, Status: StatusClosing})
}

// Deny records that p may not join, tells it if it is connected, drops its
// connections and bans it.
func (n *Node) Deny(p peer.ID, reason string) (handshake.TrustRecord, error) {
	if reason == "" {
		reason = "denied by an operator"
	}
	rec, err := n.trust.Set(p, handshake.DecisionDeny, reason)
	if err != nil {
		return rec, err
	}
	d := n.gater.ban(p)
	conns := n.reg.markClosing(p, &Failure{Reason: "not_allowed", Message: reason, At: n.reg.now()})
	rej := &handshake.RejectError{Reason: handshake.ReasonNotAllowed, Message: reason, RetryAfter: d}
	for _, c := range conns {
		n.spawn(func() { n.notifyAndClose(c, rej) })
	}
	return rec, nil
}

// notifyAndClose tells the peer on c that we rejected it, then hangs up.
func (n *Node) notifyAndClose(c network.Conn, rej *handshake.RejectError) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	if err := n.hs.SendNotice(ctx, c, rej); err != nil {
		log.Debugw("could not tell a node it was rejected", "peer", c.RemotePeer(), "err", err)
	}
	_ = c.Close()
}
