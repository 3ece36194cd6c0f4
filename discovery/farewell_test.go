package discovery

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

func frame(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }

func TestReadFarewell(t *testing.T) {
	n := newTestNode(t)
	bye := n.ann(7)
	bye.Leaving = true
	signed := n.signed(t, bye)

	in := bytes.NewReader(append(frame(signed), 0xff)) // a byte past the frame
	got, err := ReadFarewell(in)
	require.NoError(t, err)
	require.Equal(t, signed, got)
	require.Equal(t, 1, in.Len(), "nothing read past the frame")

	for name, in := range map[string][]byte{
		"empty":      nil,
		"zero":       {0},
		"too long":   binary.AppendUvarint(nil, MaxAnnouncementSize+1),
		"truncated":  frame(signed)[:len(signed)/2],
		"bad varint": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		_, err := ReadFarewell(bytes.NewReader(in))
		require.ErrorIs(t, err, ErrMalformedFarewell, name)
	}
}

// FuzzFarewell: whatever a peer sends as a farewell is refused with a
// typed error or yields an announcement Validate accepts from its node.
func FuzzFarewell(f *testing.F) {
	n := newTestNode(f)
	bye := n.ann(7)
	bye.Leaving = true
	f.Add(frame(n.signed(f, bye)))
	f.Add(frame(n.signed(f, n.ann(8))))
	f.Add([]byte{0x05, 1, 2, 3})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ReadFarewell(bytes.NewReader(in))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedFarewell)
			return
		}
		require.LessOrEqual(t, len(b), MaxAnnouncementSize)
		a, err := Validate(b, n.id, time.Now(), func(peer.ID) (uint64, bool) { return 0, false })
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.Equal(t, n.id, a.NodeID)
	})
}
