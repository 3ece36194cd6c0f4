package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// JSON field names are snake_case and append-only: later versions add
// fields, never rename or remove one.

// IDInfo is the answer to GET /v1/id.
type IDInfo struct {
	NodeID    string `json:"node_id"`
	Name      string `json:"name"`
	NetworkID string `json:"network_id"`
	// Private is false for the public default network.
	Private bool `json:"private"`
	// SecretFingerprint identifies the network secret without revealing it;
	// empty on the public network.
	SecretFingerprint string `json:"secret_fingerprint,omitempty"`
	// Addrs are full multiaddrs ending in /p2p/<node_id>; present while the
	// daemon runs.
	Addrs   []string `json:"addrs"`
	Version string   `json:"version"`
}

// PeerInfo is one entry of GET /v1/peers: a node connected now, or one that
// presented an identity and has since gone away.
type PeerInfo struct {
	NodeID string `json:"node_id"`
	// Addrs are the remote addresses of the live connections; for a node
	// without one, the listen addresses it presented. Each ends in
	// /p2p/<node_id>.
	Addrs []string `json:"addrs"`
	// Direction of the oldest live connection: "inbound" or "outbound";
	// absent without a live connection.
	Direction string `json:"direction,omitempty"`
	// ConnectedSince is when the oldest live connection opened; absent
	// without a live connection.
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// Status in the identity registry: new, handshaking, pending,
	// verified, closing, error or disconnected.
	Status string `json:"status"`
	// Name, Role and Version are what the node presented in its
	// handshake; empty before it presented any.
	Name    string `json:"name"`
	Role    string `json:"role"`
	Version string `json:"version"`
	// HandshakeRTTMillis is one round trip measured during the last
	// handshake, in milliseconds; 0 before any.
	HandshakeRTTMillis float64 `json:"handshake_rtt_ms"`
	// LastFailure is the last thing that went wrong with the node.
	LastFailure *Failure `json:"last_failure,omitempty"`
	// Connected is whether the host holds a live connection to the node.
	Connected bool `json:"connected"`
	// LastHeard is when the member table last heard of the node (an
	// announcement, a verification); absent when it never did.
	LastHeard time.Time `json:"last_heard,omitzero"`
	// BlobCount is what the node's last announcement said it stores; 0
	// before any.
	BlobCount uint64 `json:"blob_count"`
	// Score is the node's score in [0, 1], higher is better; a node
	// without samples has the priors' score. GET /v1/peers/{node}/score
	// explains it.
	Score float64 `json:"score"`
	// RTTMillis is the smoothed round-trip time (handshake and pings) in
	// milliseconds; absent before any sample.
	RTTMillis *float64 `json:"rtt_ms,omitempty"`
	// Reliability is the share of requests (pings) that succeeded, decayed
	// and blended with a prior, in [0, 1].
	Reliability float64 `json:"reliability"`
}

// Failure is what last went wrong with a node.
type Failure struct {
	// Reason is a snake_case word: a handshake rejection reason
	// ("not_allowed", "wrong_network", ...), "timeout", "banned" or
	// "error".
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Peer statuses, as PeerInfo.Status spells them.
const (
	PeerStatusNew          = "new"
	PeerStatusHandshaking  = "handshaking"
	PeerStatusPending      = "pending"
	PeerStatusVerified     = "verified"
	PeerStatusClosing      = "closing"
	PeerStatusError        = "error"
	PeerStatusDisconnected = "disconnected"
)

// Member is one entry of GET /v1/members: a node of the member table, as
// its last announcement (or, before one, its handshake) described it.
type Member struct {
	NodeID string `json:"node_id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	// Addrs are the addresses the node announced, each ending in
	// /p2p/<node_id>; never null.
	Addrs       []string `json:"addrs"`
	Version     string   `json:"version"`
	BlobCount   uint64   `json:"blob_count"`
	BytesStored uint64   `json:"bytes_stored"`
	// Seq is the sequence number of the last announcement; 0 before any.
	Seq        uint64    `json:"seq"`
	FirstHeard time.Time `json:"first_heard"`
	LastHeard  time.Time `json:"last_heard"`
	// Source is how the member entered the table: gossip, registry,
	// exchange or saved.
	Source string `json:"source"`
	// Connected is whether the host holds a live connection to the node.
	Connected bool `json:"connected"`
	// Status is the node's status in the identity registry (see
	// PeerInfo.Status), or "unknown" when the registry does not know it.
	Status string `json:"status"`
}

// MemberStatusUnknown is a Member's status when the registry does not know
// the node.
const MemberStatusUnknown = "unknown"

// CrawlResult is the answer to GET /v1/crawl.
type CrawlResult struct {
	// Nodes are those the crawl asked, in the order it reached them,
	// breadth first; never null.
	Nodes []CrawledNode `json:"nodes"`
	// Members counts the distinct nodes whose announcements the answers
	// carried, asked or not.
	Members int `json:"members"`
	// Dropped counts answer entries that failed verification.
	Dropped int `json:"dropped"`
	// Unvisited counts nodes seen in answers but not asked, because of
	// the depth, the cap on nodes or the timeout.
	Unvisited int `json:"unvisited"`
	// TimedOut is set when the timeout (or the caller going away) ended
	// the crawl before it was done.
	TimedOut bool `json:"timed_out"`
	// ElapsedMillis is how long the crawl took, in milliseconds.
	ElapsedMillis float64 `json:"elapsed_ms"`
}

// CrawledNode is one node a crawl asked.
type CrawledNode struct {
	NodeID string `json:"node_id"`
	// Depth is the node's distance in hops from the crawling node.
	Depth int `json:"depth"`
	// Via is the node whose answer listed it; empty for the start.
	Via string `json:"via"`
	// Name and Addrs are from the node's own announcement, as the
	// freshest answer carried it; empty without one. Addrs end in
	// /p2p/<node_id>; never null.
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
	// Connected are the nodes it answered it is connected to (never null),
	// ConnectedCount how many.
	ConnectedCount int      `json:"connected_count"`
	Connected      []string `json:"connected"`
	// Announcements counts the verified announcements its answer held.
	Announcements int `json:"announcements"`
	// Error says why it could not be asked; absent when it answered.
	Error string `json:"error,omitempty"`
}

// TrustList is the answer to GET /v1/trust.
type TrustList struct {
	// Policy is "open", "allowlist" or "manual".
	Policy  string        `json:"policy"`
	Records []TrustRecord `json:"records"`
}

// TrustRecord is an operator's decision about one node.
type TrustRecord struct {
	NodeID string `json:"node_id"`
	// PublicKey is the node's key, base64 of its libp2p encoding; empty
	// when the node was never seen.
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	// Decision is "allow" or "deny".
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	Created  time.Time `json:"created"`
	// Expires, if present, ends the decision.
	Expires time.Time `json:"expires,omitzero"`
}

// PendingRequest is one entry of GET /v1/trust/pending: a member awaiting an
// operator's approval.
type PendingRequest struct {
	NodeID  string `json:"node_id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Version string `json:"version"`
	// Addrs are the listen addresses the node presented, each ending in
	// /p2p/<node_id>.
	Addrs []string `json:"addrs"`
	// Justification is the node operator's note to us.
	Justification string    `json:"justification"`
	Since         time.Time `json:"since"`
	// Expires is when the request is dropped unless settled.
	Expires time.Time `json:"expires"`
}

// TrustAction is what POST /v1/trust/{node}/{action} does.
type TrustAction string

// Trust actions.
const (
	// ActionApprove allows a pending node; it becomes verified on its live
	// connection.
	ActionApprove TrustAction = "approve"
	// ActionReject denies a pending node: it is told, disconnected and
	// banned.
	ActionReject TrustAction = "reject"
	// ActionRevoke denies a node that was allowed or verified: its
	// connections drop and it is banned.
	ActionRevoke TrustAction = "revoke"
	// ActionAllow allows any node ahead of time (allowlist) and lifts its
	// ban.
	ActionAllow TrustAction = "allow"
	// ActionDeny denies any node, connected or not.
	ActionDeny TrustAction = "deny"
)

// TrustActions lists every action, in the order help text shows them.
var TrustActions = []TrustAction{ActionApprove, ActionReject, ActionRevoke, ActionAllow, ActionDeny}

// ParseTrustAction returns the action named s.
func ParseTrustAction(s string) (TrustAction, error) {
	for _, a := range TrustActions {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown trust action %q: want approve, reject, revoke, allow or deny", s)
}

// TrustActionRequest is the optional body of POST /v1/trust/{node}/{action}.
type TrustActionRequest struct {
	// Reason is recorded with the decision and, on reject, revoke and deny,
	// told to the node.
	Reason string `json:"reason,omitempty"`
}

// ConnectRequest is the body of POST /v1/connect.
type ConnectRequest struct {
	// Addr is a multiaddr ending in /p2p/<node ID>.
	Addr string `json:"addr"`
}

// ConnectResult is the answer to POST /v1/connect.
type ConnectResult struct {
	NodeID string `json:"node_id"`
	// Status is where the handshake settled: "verified", or "pending"
	// while an operator must approve one side.
	Status string `json:"status"`
}

// errorBody is every error answer's body.
type errorBody struct {
	Error string `json:"error"`
}

// ErrBadRequest marks a Backend error caused by the caller's input; the
// server answers 400 instead of 502.
var ErrBadRequest = errors.New("bad request")

// ErrNotFound marks a Backend error about a node that is not in the state the
// request needs (not pending, unknown); the server answers 404.
var ErrNotFound = errors.New("not found")

// Mark returns err, unchanged in its message, marked as kind (ErrBadRequest
// or ErrNotFound) for errors.Is.
func Mark(err, kind error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, kind: kind}
}

type markedError struct{ err, kind error }

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.kind} }

// Backend is what the API serves. The node implements it.
type Backend interface {
	ID() IDInfo
	// Peers lists the connected nodes, those that presented an identity
	// and went away, and the members of the member table, with their
	// scores, in any order: the server sorts them (SortPeers).
	Peers() []PeerInfo
	// Score explains node's score. Errors marked ErrNotFound mean the node
	// is unknown: neither in the registry nor the member table, and
	// without any sample.
	Score(node peer.ID) (ScoreExplanation, error)
	// Ping pings node count times (already validated), one after another,
	// stopping at the first failure, within a timeout of its own that ctx
	// may shorten. It returns the RTTs of the pings that succeeded, with
	// the error that stopped them. Errors marked ErrBadRequest are the
	// caller's (this node itself).
	Ping(ctx context.Context, node peer.ID, count int) ([]time.Duration, error)
	// Members lists the member table, by node ID.
	Members() []Member
	// Crawl walks the network within req's bounds (already validated and
	// defaulted) and ctx. Errors marked ErrBadRequest are the caller's.
	Crawl(ctx context.Context, req CrawlRequest) (CrawlResult, error)
	Connect(ctx context.Context, addr string) (ConnectResult, error)
	// Trust returns the trust policy and the operator's decisions.
	Trust() TrustList
	// Pending lists the nodes awaiting approval, oldest first.
	Pending() []PendingRequest
	// TrustAction applies action to node and returns the resulting
	// record. Errors marked ErrNotFound mean the node is not pending
	// (approve, reject) or neither allowed nor verified (revoke); marked
	// ErrBadRequest, that the request makes no sense (this node itself).
	TrustAction(action TrustAction, node peer.ID, reason string) (TrustRecord, error)
}
