package discovery

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peernode/discovery/pb"
)

type testNode struct {
	key crypto.PrivKey
	id  peer.ID
}

func newTestNode(t testing.TB) testNode {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(t, err)
	return testNode{k, id}
}

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func (n testNode) ann(seq uint64) Announcement {
	return Announcement{NodeID: n.id, Name: "n", Role: "full", Version: "0.1.0", Seq: seq, Time: now,
		Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}, BlobCount: 3, BytesStored: 42}
}

func (n testNode) signed(t testing.TB, a Announcement) []byte {
	t.Helper()
	b, err := Sign(n.key, a)
	require.NoError(t, err)
	return b
}

func noSeq(peer.ID) (uint64, bool) { return 0, false }

func TestSignOpenRoundTrip(t *testing.T) {
	n := newTestNode(t)
	a := n.ann(7)
	got, err := Validate(n.signed(t, a), n.id, now, noSeq)
	require.NoError(t, err)
	require.Equal(t, a.NodeID, got.NodeID)
	require.Equal(t, a.Name, got.Name)
	require.Equal(t, a.Seq, got.Seq)
	require.Equal(t, a.BlobCount, got.BlobCount)
	require.True(t, a.Time.Equal(got.Time))
	require.Len(t, got.Addrs, 1)
	require.True(t, a.Addrs[0].Equal(got.Addrs[0]))

	other := newTestNode(t)
	_, err = Sign(other.key, a)
	require.Error(t, err, "a key signs only its own announcements")
}

func requireVerdict(t *testing.T, err error, v Verdict, reason string) {
	t.Helper()
	var ie *InvalidError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, v, ie.Verdict, ie.Error())
	require.Equal(t, reason, ie.Reason, ie.Error())
	require.ErrorIs(t, err, ErrInvalid)
}

func TestValidateRejectsAndIgnores(t *testing.T) {
	n, forger := newTestNode(t), newTestNode(t)
	good := n.signed(t, n.ann(5))

	// Forged: the forger's signature over n's announcement.
	var s pb.SignedAnnouncement
	require.NoError(t, proto.Unmarshal(good, &s))
	forgedSig, err := forger.key.Sign(append([]byte(signLabel), s.Announcement...))
	require.NoError(t, err)
	forged, err := proto.Marshal(&pb.SignedAnnouncement{Announcement: s.Announcement, Signature: forgedSig})
	require.NoError(t, err)
	_, err = Validate(forged, n.id, now, noSeq)
	requireVerdict(t, err, Reject, "bad_signature")

	// Tampered body under a genuine signature.
	var m pb.Announcement
	require.NoError(t, proto.Unmarshal(s.Announcement, &m))
	m.BlobCount = 999
	body, _ := proto.Marshal(&m)
	tampered, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: body, Signature: s.Signature})
	_, err = Validate(tampered, n.id, now, noSeq)
	requireVerdict(t, err, Reject, "bad_signature")

	// Relayed by someone else as its own publication.
	_, err = Validate(good, forger.id, now, noSeq)
	requireVerdict(t, err, Reject, "wrong_sender")

	// Oversize.
	_, err = Validate(make([]byte, MaxAnnouncementSize+1), n.id, now, noSeq)
	requireVerdict(t, err, Reject, "oversize")

	// Bad addresses, signed by the node itself.
	m.ListenAddrs = [][]byte{{0xff, 0xff, 0xff}}
	body, _ = proto.Marshal(&m)
	sig, _ := n.key.Sign(append([]byte(signLabel), body...))
	badAddrs, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: body, Signature: sig})
	_, err = Validate(badAddrs, n.id, now, noSeq)
	requireVerdict(t, err, Reject, "bad_addrs")

	// Garbage.
	_, err = Validate([]byte("not protobuf at all"), n.id, now, noSeq)
	requireVerdict(t, err, Reject, "malformed")

	// Stale either way: ignored, not punished.
	for _, ts := range []time.Time{now.Add(-MaxStaleness - time.Second), now.Add(MaxStaleness + time.Second)} {
		a := n.ann(6)
		a.Time = ts
		_, err = Validate(n.signed(t, a), n.id, now, noSeq)
		requireVerdict(t, err, Ignore, "stale")
	}
	// Replayed or old sequence numbers: ignored.
	last := func(peer.ID) (uint64, bool) { return 5, true }
	_, err = Validate(good, n.id, now, last)
	requireVerdict(t, err, Ignore, "old_seq")
	_, err = Validate(n.signed(t, n.ann(4)), n.id, now, last)
	requireVerdict(t, err, Ignore, "old_seq")
	_, err = Validate(n.signed(t, n.ann(6)), n.id, now, last)
	require.NoError(t, err)
}

// Whatever arrives on the topic, Validate answers with an announcement or an
// *InvalidError, never a panic; what it accepts re-encodes within limits.
func FuzzValidateAnnouncement(f *testing.F) {
	n := newTestNode(f)
	f.Add(n.signed(f, n.ann(1)))
	a := n.ann(2)
	a.Leaving = true
	a.Addrs = nil
	f.Add(n.signed(f, a))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Validate(b, n.id, now, noSeq)
		if err != nil {
			var ie *InvalidError
			require.ErrorAs(t, err, &ie)
			return
		}
		require.Equal(t, n.id, got.NodeID)
		require.LessOrEqual(t, len(got.Addrs), maxAddrs)
	})
}

// Addresses that do not fit are left out, the first ones kept, and the
// result still validates; an address too long to ever validate is skipped.
func TestSignKeepsTheAddressesThatFit(t *testing.T) {
	n := newTestNode(t)
	a := n.ann(1)
	a.Addrs = nil
	tooLong := ma.StringCast("/dns4/" + strings.Repeat("x", 300) + "/tcp/1")
	a.Addrs = append(a.Addrs, tooLong)
	for i := range 40 {
		a.Addrs = append(a.Addrs, ma.StringCast(fmt.Sprintf("/dns4/%s%03d.example/tcp/%d", strings.Repeat("h", 180), i, 4000+i)))
	}
	b, kept, err := SignWithin(n.key, a)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), MaxAnnouncementSize)
	require.Greater(t, kept, 5)
	require.Less(t, kept, 32)
	got, err := Validate(b, n.id, now, noSeq)
	require.NoError(t, err)
	require.Len(t, got.Addrs, kept)
	for i, addr := range got.Addrs {
		require.True(t, a.Addrs[i+1].Equal(addr), "address %d", i)
	}

	// A handful of ordinary addresses all fit.
	a.Addrs = a.Addrs[:0]
	for i := range 12 {
		a.Addrs = append(a.Addrs, ma.StringCast(fmt.Sprintf("/ip6/2001:db8::%x/udp/4001/quic-v1", i)))
	}
	_, kept, err = SignWithin(n.key, a)
	require.NoError(t, err)
	require.Equal(t, 12, kept)
}
