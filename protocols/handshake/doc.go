// Package handshake implements /peernode/handshake/1.0.0: the exchange that
// promotes a libp2p connection between two peernode nodes to Verified.
//
// Each side sends a Hello (magic, version range, network ID, identity, a
// timestamp and a fresh nonce), then a Proof over a transcript that binds
// both peer IDs, both nonces, the network ID and both hellos: a signature by
// its node key, checked against the key the secure channel authenticated,
// and an HMAC with the network's handshake key. Then each side sends its
// decision (Result) under its trust policy.
//
//	initiator                        responder
//	  Hello  ------------------------->
//	         <-------------------------  Hello   (or Result: rejected)
//	  Proof  ------------------------->
//	         <-------------------------  Proof, Result
//	  Result ------------------------->
//
// The checks and decisions are pure functions (decide.go), table-tested
// without hosts; service.go is the thin stream code around them.
package handshake
