package api

import (
	"context"
	"errors"
	"time"
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

// PeerInfo is one entry of GET /v1/peers: a peer connected now.
type PeerInfo struct {
	NodeID string `json:"node_id"`
	// Addrs are the remote addresses of the live connections.
	Addrs []string `json:"addrs"`
	// Direction of the oldest live connection: "inbound" or "outbound".
	Direction      string    `json:"direction"`
	ConnectedSince time.Time `json:"connected_since"`
}

// ConnectRequest is the body of POST /v1/connect.
type ConnectRequest struct {
	// Addr is a multiaddr ending in /p2p/<node ID>.
	Addr string `json:"addr"`
}

// ConnectResult is the answer to POST /v1/connect.
type ConnectResult struct {
	NodeID string `json:"node_id"`
}

// errorBody is every error answer's body.
type errorBody struct {
	Error string `json:"error"`
}

// ErrBadRequest marks a Backend error caused by the caller's input; the
// server answers 400 instead of 502.
var ErrBadRequest = errors.New("bad request")

// Backend is what the API serves. The node implements it.
type Backend interface {
	ID() IDInfo
	Peers() []PeerInfo
	Connect(ctx context.Context, addr string) (ConnectResult, error)
}
