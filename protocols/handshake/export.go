package handshake

import (
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/protocols/handshake/pb"
)

// Transcript is the hash both proofs sign: see doc.go. helloI and helloR
// are the hellos' protobuf encodings as sent. Exported for tools and tests
// that speak the protocol without a Service.
func Transcript(networkID string, initiator, responder peer.ID, helloI, helloR []byte) []byte {
	return transcript(networkID, initiator, responder, helloI, helloR)
}

// Prove makes the proof of one side (initiator or responder) over a
// transcript, with the node key and the network's handshake key.
func Prove(key crypto.PrivKey, handshakeKey []byte, initiator bool, t []byte) (*pb.Proof, error) {
	s := sideResponder
	if initiator {
		s = sideInitiator
	}
	return makeProof(key, handshakeKey, s, t)
}

// EncodeFrame returns a frame with its length prefix, as written on the
// stream.
func EncodeFrame(f *pb.Frame) ([]byte, error) { return encodeFrame(f) }

// ServiceName is the resource manager's service scope of handshake
// streams, for nodes that size its limits.
const ServiceName = serviceName

// StreamMemory is what each handshake stream reserves from the resource
// manager.
const StreamMemory = streamMemory
