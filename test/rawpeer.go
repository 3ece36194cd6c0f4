package test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peernode/node"
	"peernode/protocols/handshake"
	"peernode/protocols/handshake/pb"
)

// RawPeer speaks the handshake by hand over a bare host's stream, so a test
// can play a peer that breaks the protocol: stalls, lies, replays,
// sends garbage.
type RawPeer struct {
	t testing.TB
	S network.Stream
	r msgio.ReadCloser
}

// OpenRaw opens a handshake stream from h to target.
func OpenRaw(t testing.TB, h host.Host, target peer.ID) *RawPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, target, protocol.ID(handshake.ID))
	require.NoError(t, err)
	_ = s.SetDeadline(time.Now().Add(WaitTimeout))
	t.Cleanup(func() { _ = s.Reset() })
	return &RawPeer{t: t, S: s, r: msgio.NewVarintReaderSize(s, handshake.MaxFrameSize)}
}

// Send writes one frame.
func (r *RawPeer) Send(f *pb.Frame) {
	r.t.Helper()
	b, err := handshake.EncodeFrame(f)
	require.NoError(r.t, err)
	r.SendBytes(b)
}

// SendBytes writes raw bytes.
func (r *RawPeer) SendBytes(b []byte) {
	r.t.Helper()
	_, err := r.S.Write(b)
	require.NoError(r.t, err)
}

// Recv reads one frame.
func (r *RawPeer) Recv() (*pb.Frame, error) {
	b, err := r.r.ReadMsg()
	if err != nil {
		return nil, err
	}
	defer r.r.ReleaseMsg(b)
	return handshake.DecodeFrame(b)
}

// RecvResult reads frames until a result and returns it.
func (r *RawPeer) RecvResult() *pb.Result {
	r.t.Helper()
	for {
		f, err := r.Recv()
		require.NoError(r.t, err, "waiting for a result frame")
		if res := f.GetResult(); res != nil {
			return res
		}
	}
}

// RecvProof reads the responder's frames that follow its hello up to its
// proof, and returns the decision it sent ahead of the proof (nil if none:
// it waits for our proof to decide).
func (r *RawPeer) RecvProof() (early *pb.Result, proof *pb.Proof) {
	r.t.Helper()
	for {
		f, err := r.Recv()
		require.NoError(r.t, err, "waiting for the responder's proof")
		if res := f.GetResult(); res != nil {
			require.Nil(r.t, early, "two results ahead of the proof")
			early = res
			continue
		}
		require.NotNil(r.t, f.GetProof(), "expected a proof, got %v", f)
		return early, f.GetProof()
	}
}

// ValidHello is a hello that n would accept from a member of nw.
func ValidHello(nw node.Network) *pb.Hello {
	h := &pb.Hello{
		Magic: handshake.Magic, MinVersion: handshake.MinVersion, MaxVersion: handshake.MaxVersion,
		NetworkId: nw.ID, Name: "raw", Role: pb.Role_ROLE_FULL, SoftwareVersion: node.Version,
		TimestampMs: time.Now().UnixMilli(), Nonce: make([]byte, handshake.NonceSize), Instance: make([]byte, handshake.InstanceSize),
	}
	_, _ = rand.Read(h.Nonce)
	_, _ = rand.Read(h.Instance)
	return h
}

// HelloFrame wraps a hello.
func HelloFrame(h *pb.Hello) *pb.Frame { return &pb.Frame{Body: &pb.Frame_Hello{Hello: h}} }

// ProofFrame wraps a proof.
func ProofFrame(p *pb.Proof) *pb.Frame { return &pb.Frame{Body: &pb.Frame_Proof{Proof: p}} }

// ResultFrame wraps a result.
func ResultFrame(r *pb.Result) *pb.Frame { return &pb.Frame{Body: &pb.Frame_Result{Result: r}} }

// Marshal encodes a hello as the transcript sees it.
func Marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}
