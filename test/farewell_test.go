package test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"peernode/discovery"
)

// farewell sends frame over LeaveProtocol from f to the first
// node and reports whether it acknowledged (false: the stream was reset).
func (f *forger) farewell(frame []byte) bool {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	s, err := f.h.NewStream(ctx, f.nodes[0].ID(), discovery.LeaveProtocol)
	require.NoError(f.t, err)
	defer s.Close()
	if _, err := s.Write(frame); err != nil {
		return false // reset already
	}
	_ = s.CloseWrite()
	var ack [1]byte
	_, err = io.ReadFull(s, ack[:])
	return err == nil && ack[0] == discovery.FarewellAck
}

func farewellFrame(signed []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(signed))), signed...)
}

// A farewell is checked like an announcement of the topic: only the
// leaving node itself can say it leaves, only a leaving announcement is a
// farewell, and garbage is refused; a genuine one removes the node at
// once.
func TestFarewellsCheckedLikeAnnouncements(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 2, nil)
	a, b := nodes[0], nodes[1]
	waitMember(t, a, b.ID())
	f := newForger(t, "farewell-forger", nodes)
	f.announce(1, "farewell-forger")
	poll(t, "the forger's announcement in the table", func() error { return entryIs(a, f.id(), 1, "farewell-forger") })

	// b's own signed announcement, relayed by the forger as a farewell.
	mb, ok := discoveryMember(a, b.ID())
	require.True(t, ok)
	require.NotNil(t, mb.Signed)
	require.False(t, f.farewell(farewellFrame(mb.Signed)), "a farewell for another node")

	// The forger's own, but not leaving.
	stay, err := discovery.Sign(f.key, f.announcement(2, "farewell-forger"))
	require.NoError(t, err)
	require.False(t, f.farewell(farewellFrame(stay)), "an announcement that does not leave")

	// Garbage, an empty frame, a length past the limit.
	require.False(t, f.farewell(farewellFrame([]byte("not an announcement"))))
	require.False(t, f.farewell([]byte{0}))
	require.False(t, f.farewell(binary.AppendUvarint(nil, discovery.MaxAnnouncementSize+1)))

	_, ok = discoveryMember(a, b.ID())
	require.True(t, ok, "b is still a member")
	require.NoError(t, entryIs(a, f.id(), 1, "farewell-forger"), "the forger is still a member")

	// The forger's genuine leaving: acknowledged, and it is gone at once.
	bye := f.announcement(3, "farewell-forger")
	bye.Leaving = true
	signed, err := discovery.Sign(f.key, bye)
	require.NoError(t, err)
	require.True(t, f.farewell(farewellFrame(signed)), "a genuine farewell is acknowledged")
	_, ok = discoveryMember(a, f.id())
	require.False(t, ok, "removed when the farewell was acknowledged")
}
