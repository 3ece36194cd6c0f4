package discovery

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"google.golang.org/protobuf/encoding/protowire"
)

// PeersProtocol is peer exchange: the caller opens a stream and reads one
// answer, a length-prefixed PeersResponse; the answering node closes the
// stream. It is registered behind the verified-only gate.
const PeersProtocol protocol.ID = "/peernode/peers/1.0.0"

// Limits of peer exchange.
const (
	// DefaultExchangeMax is how many announcements an answer carries.
	DefaultExchangeMax = 256
	// MaxConnectedIDs caps the connected node IDs of one answer.
	MaxConnectedIDs = 256
	// MaxPeersFrame caps an answer a caller reads: a full answer of
	// DefaultExchangeMax announcements of the largest size, the connected
	// IDs and their framing.
	MaxPeersFrame = DefaultExchangeMax*(MaxAnnouncementSize+8) + MaxConnectedIDs*(maxIDLen+4)
	// ExchangeTimeout bounds one exchange, both sides.
	ExchangeTimeout = 10 * time.Second
	// maxIDLen is more than any peer ID's binary form (identity-hashed
	// Ed25519 keys are 38 bytes, SHA-256-hashed RSA keys 34).
	maxIDLen = 128
)

// Field numbers of PeersResponse (discovery.proto).
const (
	fieldAnnouncements protowire.Number = 1
	fieldConnected     protowire.Number = 2
)

// ErrMalformedPeers is wrapped by every error of an answer that cannot be
// decoded at all.
var ErrMalformedPeers = errors.New("malformed peer-exchange answer")

// Peers is a decoded peer-exchange answer. Each announcement was verified
// against its own node's key; entries that failed are dropped and counted.
type Peers struct {
	// Announcements verified, at most one per node (the highest sequence
	// number).
	Announcements []Announcement
	// Signed holds the announcements as their nodes signed them, in the
	// order of Announcements.
	Signed [][]byte
	// Connected are the nodes the answering node has a live verified
	// connection to.
	Connected []peer.ID
	// Dropped counts entries that failed verification or did not parse.
	Dropped int
}

// EncodePeers builds an answer, length prefix included. signed are
// announcements as their nodes signed them (a SignedAnnouncement's
// encoding each), written as they are; at most DefaultExchangeMax of them
// and MaxConnectedIDs connected IDs are kept.
func EncodePeers(signed [][]byte, connected []peer.ID) []byte {
	body := encodePeersBody(signed, connected)
	out := protowire.AppendVarint(make([]byte, 0, len(body)+protowire.SizeVarint(uint64(len(body)))), uint64(len(body)))
	return append(out, body...)
}

// LocalPeers is the answer a caller would decode from EncodePeers(signed,
// connected): a node's view of itself, checked the same way.
func LocalPeers(signed [][]byte, connected []peer.ID) (Peers, error) {
	return DecodePeers(encodePeersBody(signed, connected))
}

func encodePeersBody(signed [][]byte, connected []peer.ID) []byte {
	signed = signed[:min(len(signed), DefaultExchangeMax)]
	connected = connected[:min(len(connected), MaxConnectedIDs)]
	var body []byte
	for _, s := range signed {
		body = protowire.AppendTag(body, fieldAnnouncements, protowire.BytesType)
		body = protowire.AppendBytes(body, s)
	}
	for _, id := range connected {
		body = protowire.AppendTag(body, fieldConnected, protowire.BytesType)
		body = protowire.AppendBytes(body, []byte(id))
	}
	return body
}

// DecodePeers decodes an answer without its length prefix. A body that is
// not a PeersResponse is ErrMalformedPeers; announcements that fail Open
// and connected IDs that do not parse are dropped and counted, so one bad
// entry does not cost the caller the others.
func DecodePeers(b []byte) (Peers, error) {
	var out Peers
	index := map[peer.ID]int{}
	seen := map[peer.ID]bool{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Peers{}, fmt.Errorf("%w: %v", ErrMalformedPeers, protowire.ParseError(n))
		}
		b = b[n:]
		if (num == fieldAnnouncements || num == fieldConnected) && typ != protowire.BytesType {
			return Peers{}, fmt.Errorf("%w: field %d has wire type %d", ErrMalformedPeers, num, typ)
		}
		if num != fieldAnnouncements && num != fieldConnected {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return Peers{}, fmt.Errorf("%w: field %d: %v", ErrMalformedPeers, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return Peers{}, fmt.Errorf("%w: field %d: %v", ErrMalformedPeers, num, protowire.ParseError(n))
		}
		b = b[n:]
		if num == fieldConnected {
			id, err := peer.IDFromBytes(v)
			if err != nil || len(out.Connected) == MaxConnectedIDs {
				out.Dropped++
				continue
			}
			if !seen[id] {
				seen[id] = true
				out.Connected = append(out.Connected, id)
			}
			continue
		}
		a, err := Open(v)
		if err != nil {
			out.Dropped++
			continue
		}
		signed := append([]byte(nil), v...)
		if i, ok := index[a.NodeID]; ok {
			if a.Seq > out.Announcements[i].Seq {
				out.Announcements[i], out.Signed[i] = a, signed
			}
			continue
		}
		if len(out.Announcements) == DefaultExchangeMax {
			out.Dropped++
			continue
		}
		index[a.NodeID] = len(out.Announcements)
		out.Announcements = append(out.Announcements, a)
		out.Signed = append(out.Signed, signed)
	}
	return out, nil
}

// ServePeers answers a peer-exchange stream and closes it.
func ServePeers(s network.Stream, signed [][]byte, connected []peer.ID) {
	_ = s.SetDeadline(time.Now().Add(ExchangeTimeout))
	if _, err := s.Write(EncodePeers(signed, connected)); err != nil {
		log.Debugw("peer exchange: answer not sent", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// ReadPeers reads and decodes the answer on a peer-exchange stream the
// caller opened, then closes the stream.
func ReadPeers(s network.Stream) (Peers, error) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ExchangeTimeout))
	_ = s.CloseWrite()
	r := msgio.NewVarintReaderSize(s, MaxPeersFrame)
	b, err := r.ReadMsg()
	if err != nil {
		_ = s.Reset()
		if errors.Is(err, msgio.ErrMsgTooLarge) {
			return Peers{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformedPeers, MaxPeersFrame)
		}
		if errors.Is(err, io.EOF) {
			return Peers{}, fmt.Errorf("peer exchange with %s: closed without an answer", s.Conn().RemotePeer())
		}
		return Peers{}, fmt.Errorf("peer exchange with %s: %w", s.Conn().RemotePeer(), err)
	}
	defer r.ReleaseMsg(b)
	return DecodePeers(b)
}
