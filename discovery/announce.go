package discovery

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"peernode/discovery/pb"
)

// Limits of an announcement.
const (
	// MaxAnnouncementSize caps a signed announcement. Every text field
	// full, a signature and a dozen or so typical addresses (30 to 60 bytes
	// each) fit easily; 32 addresses of the longest allowed form do not, and
	// Sign then announces as many as fit, in order.
	MaxAnnouncementSize = 4 << 10
	// MaxStaleness is how old (or how far ahead) an announcement's
	// timestamp may be: older ones are ignored as stale.
	MaxStaleness = 5 * time.Minute
	maxNameLen   = 64
	maxRoleLen   = 16
	maxVersion   = 32
	maxAddrs     = 32
	maxAddrLen   = 256
)

// signLabel separates announcement signatures from anything else a node
// key signs.
const signLabel = "peernode announcement v1\x00"

// Announcement is what a node says about itself on the announcement topic.
type Announcement struct {
	NodeID      peer.ID
	Name        string
	Role        string
	Addrs       []ma.Multiaddr
	BlobCount   uint64
	BytesStored uint64
	Version     string
	Seq         uint64
	Time        time.Time
	Leaving     bool
}

// Verdict is a validator's answer, as pubsub understands it: Reject
// penalises the sender, Ignore drops the message without penalty.
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota
	Reject
	Ignore
)

func (v Verdict) String() string {
	return [...]string{"accept", "reject", "ignore"}[v]
}

// InvalidError explains why an announcement was not accepted.
type InvalidError struct {
	Verdict Verdict
	Reason  string // a short label: "bad_signature", "stale", ...
	Detail  string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("announcement %s (%s): %s", e.Verdict, e.Reason, e.Detail)
}

func invalid(v Verdict, reason, format string, args ...any) *InvalidError {
	return &InvalidError{Verdict: v, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Sign encodes a and signs it with key, which must be a's node key. The
// result is what goes on the topic and into peer-exchange answers. It is
// SignWithin without the count of addresses kept.
func Sign(key crypto.PrivKey, a Announcement) ([]byte, error) {
	b, _, err := SignWithin(key, a)
	return b, err
}

// SignWithin signs a like Sign and says how many of a's addresses it
// announced: at most 32, none longer than 256 bytes, and only as many (in
// a's order, so put the best first) as keep the result within
// MaxAnnouncementSize. It fails only if even no address at all is too big.
func SignWithin(key crypto.PrivKey, a Announcement) (signed []byte, kept int, err error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, 0, err
	}
	if id != a.NodeID {
		return nil, 0, fmt.Errorf("sign announcement: key of %s, announcement of %s", id, a.NodeID)
	}
	m := &pb.Announcement{
		NodeId: []byte(a.NodeID), Name: a.Name, Role: a.Role, BlobCount: a.BlobCount, BytesStored: a.BytesStored,
		SoftwareVersion: a.Version, Seq: a.Seq, TimestampMs: a.Time.UnixMilli(), Leaving: a.Leaving,
	}
	for _, addr := range a.Addrs {
		if len(m.ListenAddrs) == maxAddrs {
			break
		}
		if b := addr.Bytes(); len(b) <= maxAddrLen {
			m.ListenAddrs = append(m.ListenAddrs, b)
		}
	}
	for {
		out, err := signAnnouncement(key, m)
		if err != nil {
			return nil, 0, err
		}
		if len(out) <= MaxAnnouncementSize {
			return out, len(m.ListenAddrs), nil
		}
		if len(m.ListenAddrs) == 0 {
			return nil, 0, fmt.Errorf("sign announcement: %d bytes without any address, more than %d", len(out), MaxAnnouncementSize)
		}
		m.ListenAddrs = m.ListenAddrs[:len(m.ListenAddrs)-1]
	}
}

func signAnnouncement(key crypto.PrivKey, m *pb.Announcement) ([]byte, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(append([]byte(signLabel), body...))
	if err != nil {
		return nil, fmt.Errorf("sign announcement: %w", err)
	}
	return proto.Marshal(&pb.SignedAnnouncement{Announcement: body, Signature: sig})
}

// ErrInvalid is matched by every *InvalidError.
var ErrInvalid = errors.New("invalid announcement")

// Is lets errors.Is(err, ErrInvalid) match.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Open decodes a signed announcement and checks everything that does not
// depend on the receiver's state: size, encoding, the signature by the
// announced node's own key, and each field. Any failure is a Reject: only a
// broken or forging sender produces one.
func Open(b []byte) (Announcement, error) {
	if len(b) > MaxAnnouncementSize {
		return Announcement{}, invalid(Reject, "oversize", "%d bytes, at most %d", len(b), MaxAnnouncementSize)
	}
	var s pb.SignedAnnouncement
	if err := proto.Unmarshal(b, &s); err != nil {
		return Announcement{}, invalid(Reject, "malformed", "%v", err)
	}
	var m pb.Announcement
	if err := proto.Unmarshal(s.GetAnnouncement(), &m); err != nil {
		return Announcement{}, invalid(Reject, "malformed", "%v", err)
	}
	id, err := peer.IDFromBytes(m.GetNodeId())
	if err != nil {
		return Announcement{}, invalid(Reject, "malformed", "node ID: %v", err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return Announcement{}, invalid(Reject, "malformed", "node ID %s does not embed its key: %v", id, err)
	}
	ok, err := pub.Verify(append([]byte(signLabel), s.GetAnnouncement()...), s.GetSignature())
	if err != nil || !ok {
		return Announcement{}, invalid(Reject, "bad_signature", "not signed by %s", id)
	}
	return fromWire(id, &m)
}

func fromWire(id peer.ID, m *pb.Announcement) (Announcement, error) {
	switch {
	case !text(m.GetName(), maxNameLen):
		return Announcement{}, invalid(Reject, "malformed", "name is not UTF-8 of at most %d bytes", maxNameLen)
	case !text(m.GetRole(), maxRoleLen):
		return Announcement{}, invalid(Reject, "malformed", "role is not UTF-8 of at most %d bytes", maxRoleLen)
	case !text(m.GetSoftwareVersion(), maxVersion):
		return Announcement{}, invalid(Reject, "malformed", "version is not UTF-8 of at most %d bytes", maxVersion)
	case len(m.GetListenAddrs()) > maxAddrs:
		return Announcement{}, invalid(Reject, "bad_addrs", "%d addresses, at most %d", len(m.GetListenAddrs()), maxAddrs)
	}
	a := Announcement{
		NodeID: id, Name: m.GetName(), Role: m.GetRole(), BlobCount: m.GetBlobCount(), BytesStored: m.GetBytesStored(),
		Version: m.GetSoftwareVersion(), Seq: m.GetSeq(), Time: time.UnixMilli(m.GetTimestampMs()), Leaving: m.GetLeaving(),
	}
	for i, b := range m.GetListenAddrs() {
		if len(b) > maxAddrLen {
			return Announcement{}, invalid(Reject, "bad_addrs", "address %d is %d bytes", i, len(b))
		}
		addr, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return Announcement{}, invalid(Reject, "bad_addrs", "address %d: %v", i, err)
		}
		a.Addrs = append(a.Addrs, addr)
	}
	return a, nil
}

func text(s string, max int) bool { return len(s) <= max && utf8.ValidString(s) }

// Validate is the topic validator's decision, a pure function of the
// message, its publisher, the time and the last sequence number accepted
// from that node: Reject for anything only a broken or lying node sends
// (bad signature, a publisher other than the announced node, oversize,
// malformed addresses), Ignore for what an honest network also produces
// (stale timestamps, sequence numbers already seen).
func Validate(b []byte, from peer.ID, now time.Time, lastSeq func(peer.ID) (uint64, bool)) (Announcement, error) {
	a, err := Open(b)
	if err != nil {
		return Announcement{}, err
	}
	if a.NodeID != from {
		return Announcement{}, invalid(Reject, "wrong_sender", "published by %s, announces %s", from, a.NodeID)
	}
	if a.Time.Before(now.Add(-MaxStaleness)) || a.Time.After(now.Add(MaxStaleness)) {
		return Announcement{}, invalid(Ignore, "stale", "timestamp %s is more than %s from ours", a.Time.UTC().Format(time.RFC3339), MaxStaleness)
	}
	if last, ok := lastSeq(a.NodeID); ok && a.Seq <= last {
		return Announcement{}, invalid(Ignore, "old_seq", "sequence %d, already have %d", a.Seq, last)
	}
	return a, nil
}
