package handshake

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peernode/protocols/handshake/pb"
)

// Shared fixtures of the package's tests.

const testNetwork = "9f2c-test-network"

// testNow has millisecond precision, like a hello's timestamp, so a
// timestamp can sit exactly at the clock-skew limit.
var testNow = time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)

var testInstance = []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}

func testLocal() Local {
	return Local{NetworkID: testNetwork, Now: testNow, MaxClockSkew: DefaultMaxClockSkew}
}

var testAddrs = []ma.Multiaddr{
	ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
	ma.StringCast("/ip6/::1/udp/4001/quic-v1"),
}

// validHello is a hello that CheckHello(testLocal(), ...) accepts.
func validHello() *pb.Hello {
	h := &pb.Hello{
		Magic:           Magic,
		MinVersion:      MinVersion,
		MaxVersion:      MaxVersion,
		NetworkId:       testNetwork,
		Name:            "alice",
		Role:            pb.Role_ROLE_CLIENT,
		SoftwareVersion: "v1.2.3",
		TimestampMs:     testNow.UnixMilli(),
		Nonce:           bytes.Repeat([]byte{0xab}, NonceSize),
		Instance:        bytes.Clone(testInstance),
		Justification:   "please let me in",
	}
	for _, a := range testAddrs {
		h.ListenAddrs = append(h.ListenAddrs, a.Bytes())
	}
	return h
}

// seededKey returns a deterministic Ed25519 node key and its peer ID.
func seededKey(t testing.TB, seed byte) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(priv)
	require.NoError(t, err)
	return priv, id
}

// frameBody is f as DecodeFrame takes it: encoded by encodeFrame, without
// the length prefix.
func frameBody(t testing.TB, f *pb.Frame) []byte {
	t.Helper()
	b, err := encodeFrame(f)
	require.NoError(t, err)
	n, k := binary.Uvarint(b)
	require.Positive(t, k)
	require.Equal(t, uint64(len(b)-k), n, "length prefix")
	return b[k:]
}
