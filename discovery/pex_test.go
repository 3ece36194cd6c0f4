package discovery

import (
	"bytes"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"peernode/discovery/pb"
)

// body strips EncodePeers' length prefix.
func body(t testing.TB, frame []byte) []byte {
	t.Helper()
	n, k := protowire.ConsumeVarint(frame)
	require.Positive(t, k)
	require.Equal(t, int(n), len(frame)-k)
	return frame[k:]
}

func TestPeersRoundTrip(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	signed := [][]byte{a.signed(t, a.ann(1)), b.signed(t, b.ann(5)), b.signed(t, b.ann(9)), b.signed(t, b.ann(7))}
	got, err := DecodePeers(body(t, EncodePeers(signed, []peer.ID{a.id, c.id, a.id})))
	require.NoError(t, err)
	require.Zero(t, got.Dropped)
	require.Len(t, got.Announcements, 2, "one entry per node")
	require.Equal(t, a.id, got.Announcements[0].NodeID)
	require.Equal(t, b.id, got.Announcements[1].NodeID)
	require.EqualValues(t, 9, got.Announcements[1].Seq, "the highest sequence number wins")
	require.Equal(t, signed[2], got.Signed[1], "the bytes as signed, for passing on")
	require.Equal(t, []peer.ID{a.id, c.id}, got.Connected)

	// The wire form is a PeersResponse as discovery.proto declares it.
	var r pb.PeersResponse
	require.NoError(t, proto.Unmarshal(body(t, EncodePeers(signed[:1], []peer.ID{c.id})), &r))
	require.Len(t, r.GetAnnouncements(), 1)
	require.Equal(t, [][]byte{[]byte(c.id)}, r.GetConnected())
}

func TestPeersDropsBadEntries(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	forged := a.signed(t, a.ann(1))
	forged = bytes.Clone(forged)
	forged[len(forged)-1] ^= 1 // the signature's last byte
	// b signs a claim to be a.
	claim, err := proto.Marshal(&pb.Announcement{NodeId: []byte(a.id), Name: "a", Seq: 2})
	require.NoError(t, err)
	sig, err := b.key.Sign(append([]byte(signLabel), claim...))
	require.NoError(t, err)
	stolen, err := proto.Marshal(&pb.SignedAnnouncement{Announcement: claim, Signature: sig})
	require.NoError(t, err)
	frame := EncodePeers([][]byte{forged, stolen, {0xff, 0x01}, b.signed(t, b.ann(3))}, []peer.ID{b.id})
	frame = append(frame, protowire.AppendBytes(protowire.AppendTag(nil, fieldConnected, protowire.BytesType), []byte("not an id"))...)
	got, err := DecodePeers(frameBody(frame))
	require.NoError(t, err)
	require.Equal(t, 4, got.Dropped)
	require.Len(t, got.Announcements, 1)
	require.Equal(t, b.id, got.Announcements[0].NodeID)
	require.Equal(t, []peer.ID{b.id}, got.Connected)
}

// frameBody strips the length prefix without checking it (the frame was
// extended after encoding).
func frameBody(frame []byte) []byte {
	_, k := protowire.ConsumeVarint(frame)
	return frame[k:]
}

func TestPeersMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated tag":      {0x80},
		"truncated length":   {0x0a, 0x05, 0x01},
		"wrong wire type":    protowire.AppendVarint(protowire.AppendTag(nil, fieldAnnouncements, protowire.VarintType), 3),
		"bad unknown field":  protowire.AppendTag(nil, 9, protowire.StartGroupType),
		"connected as fixed": protowire.AppendFixed32(protowire.AppendTag(nil, fieldConnected, protowire.Fixed32Type), 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePeers(b)
			require.ErrorIs(t, err, ErrMalformedPeers)
		})
	}
	// Unknown fields are skipped: a newer node may add some.
	b := protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 1)
	got, err := DecodePeers(b)
	require.NoError(t, err)
	require.Zero(t, got.Dropped)
}

func TestEncodePeersCaps(t *testing.T) {
	n := newTestNode(t)
	one := n.signed(t, n.ann(1))
	signed := make([][]byte, DefaultExchangeMax+10)
	for i := range signed {
		signed[i] = one
	}
	ids := make([]peer.ID, MaxConnectedIDs+10)
	for i := range ids {
		ids[i] = n.id
	}
	frame := EncodePeers(signed, ids)
	require.LessOrEqual(t, len(frame), MaxPeersFrame)
	var r pb.PeersResponse
	require.NoError(t, proto.Unmarshal(body(t, frame), &r))
	require.Len(t, r.GetAnnouncements(), DefaultExchangeMax)
	require.Len(t, r.GetConnected(), MaxConnectedIDs)
}

// A peer-exchange answer never makes the decoder panic; every announcement
// it returns verifies, and only a body that is not a PeersResponse is an
// error.
func FuzzPeersResponse(f *testing.F) {
	a, b := newTestNode(f), newTestNode(f)
	f.Add(body(f, EncodePeers([][]byte{a.signed(f, a.ann(1)), b.signed(f, b.ann(2))}, []peer.ID{a.id, b.id})))
	f.Add(body(f, EncodePeers([][]byte{{1, 2, 3}}, nil)))
	f.Add([]byte{0x0a, 0x05, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := DecodePeers(in)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedPeers)
			return
		}
		require.Len(t, got.Signed, len(got.Announcements))
		seen := map[peer.ID]bool{}
		for i, ann := range got.Announcements {
			require.False(t, seen[ann.NodeID], "one entry per node")
			seen[ann.NodeID] = true
			again, err := Open(got.Signed[i])
			require.NoError(t, err)
			require.Equal(t, ann.NodeID, again.NodeID)
		}
		require.LessOrEqual(t, len(got.Connected), MaxConnectedIDs)
	})
}
