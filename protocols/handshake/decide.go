package handshake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/protocols/handshake/pb"
)

// Magic opens every hello: "PNHS".
const Magic uint32 = 0x504e4853

// The handshake versions this build speaks.
const (
	MinVersion uint32 = 1
	MaxVersion uint32 = 1
)

// Limits of the hello's fields.
const (
	NonceSize           = 32
	InstanceSize        = 16
	MaxNameLen          = 64
	MaxVersionLen       = 32
	MaxAddrs            = 32
	MaxAddrLen          = 256
	MaxJustificationLen = 256
	MaxMessageLen       = 256
)

// Reason says why a handshake was rejected. Values mirror pb.Reason.
type Reason int32

// Reasons, as the issue and the wire name them.
const (
	ReasonBadMagic            = Reason(pb.Reason_BAD_MAGIC)
	ReasonIncompatibleVersion = Reason(pb.Reason_INCOMPATIBLE_VERSION)
	ReasonWrongNetwork        = Reason(pb.Reason_WRONG_NETWORK)
	ReasonBadProof            = Reason(pb.Reason_BAD_PROOF)
	ReasonClockSkew           = Reason(pb.Reason_CLOCK_SKEW)
	ReasonNotAllowed          = Reason(pb.Reason_NOT_ALLOWED)
	ReasonPendingFull         = Reason(pb.Reason_PENDING_FULL)
	ReasonBanned              = Reason(pb.Reason_BANNED)
	ReasonDuplicate           = Reason(pb.Reason_DUPLICATE)
	ReasonTimeout             = Reason(pb.Reason_TIMEOUT)
	ReasonMalformed           = Reason(pb.Reason_MALFORMED)
)

// String is the reason's snake_case name: "wrong_network".
func (r Reason) String() string {
	if name, ok := pb.Reason_name[int32(r)]; ok && r != 0 {
		return strings.ToLower(name)
	}
	return fmt.Sprintf("reason_%d", int32(r))
}

// Bans reports whether the rejected peer should be banned for a while:
// retrying would only repeat the rejection.
func (r Reason) Bans() bool {
	return r == ReasonWrongNetwork || r == ReasonBanned || r == ReasonNotAllowed
}

// RejectError is a rejected handshake.
type RejectError struct {
	Reason  Reason
	Message string
	// RetryAfter is how long the rejected side should wait; 0: at once.
	RetryAfter time.Duration
	// Remote is true when the peer rejected us, false when we rejected it.
	Remote bool
}

func (e *RejectError) Error() string {
	who := "we rejected the peer"
	if e.Remote {
		who = "the peer rejected us"
	}
	msg := fmt.Sprintf("handshake failed: %s: %s", who, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// Outcome of a handshake from one side's point of view.
type Outcome int

// Outcomes. The zero value is not an outcome.
const (
	Verified Outcome = iota + 1
	Pending
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Verified:
		return "verified"
	case Pending:
		return "pending"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Combine merges both sides' decisions: verified only if both accept,
// rejected if either refuses, pending otherwise.
func Combine(local, remote Outcome) Outcome {
	switch {
	case local == Rejected || remote == Rejected:
		return Rejected
	case local == Verified && remote == Verified:
		return Verified
	}
	return Pending
}

// Role is what a node offers the network.
type Role string

// Roles.
const (
	RoleFull   Role = "full"
	RoleClient Role = "client"
)

// ParseRole parses "full" or "client".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleFull, RoleClient:
		return Role(s), nil
	}
	return "", fmt.Errorf("role %q: want full or client", s)
}

func (r Role) wire() pb.Role {
	if r == RoleClient {
		return pb.Role_ROLE_CLIENT
	}
	return pb.Role_ROLE_FULL
}

// Identity is what a peer presented in its hello.
type Identity struct {
	Name          string
	Role          Role
	Version       string
	ListenAddrs   []ma.Multiaddr
	Instance      string // hex of the hello's instance bytes
	Justification string
}

// Local is what CheckHello compares a hello against.
type Local struct {
	NetworkID    string
	Now          time.Time
	MaxClockSkew time.Duration
}

// CheckHello validates a peer's hello. The checks run in a fixed order so
// that a peer gets the most useful reason: not peernode at all, then an
// incompatible version, then another network, then a malformed field, then
// a clock too far off.
func CheckHello(l Local, h *pb.Hello) (Identity, *RejectError) {
	switch {
	case h.GetMagic() != Magic:
		return Identity{}, reject(ReasonBadMagic, "magic %#x is not a peernode handshake", h.GetMagic())
	case h.GetMinVersion() > h.GetMaxVersion():
		return Identity{}, reject(ReasonMalformed, "version range %d-%d is empty", h.GetMinVersion(), h.GetMaxVersion())
	case h.GetMaxVersion() < MinVersion || h.GetMinVersion() > MaxVersion:
		return Identity{}, reject(ReasonIncompatibleVersion, "peer speaks versions %d-%d, we speak %d-%d",
			h.GetMinVersion(), h.GetMaxVersion(), MinVersion, MaxVersion)
	case h.GetNetworkId() != l.NetworkID:
		return Identity{}, reject(ReasonWrongNetwork, "peer is on network %q, we are on %q", clip(h.GetNetworkId(), 64), l.NetworkID)
	}
	id, rej := parseIdentity(h)
	if rej != nil {
		return Identity{}, rej
	}
	// Compare instants, not a difference: a difference of far-apart times
	// overflows time.Duration.
	ts := time.UnixMilli(h.GetTimestampMs())
	if ts.Before(l.Now.Add(-l.MaxClockSkew)) || ts.After(l.Now.Add(l.MaxClockSkew)) {
		return Identity{}, reject(ReasonClockSkew, "peer's clock reads %s, ours %s: more than %s apart; check NTP on both machines",
			ts.UTC().Format(time.RFC3339), l.Now.UTC().Format(time.RFC3339), l.MaxClockSkew)
	}
	return id, nil
}

func parseIdentity(h *pb.Hello) (Identity, *RejectError) {
	switch {
	case len(h.GetNonce()) != NonceSize:
		return Identity{}, reject(ReasonMalformed, "nonce is %d bytes, want %d", len(h.GetNonce()), NonceSize)
	case len(h.GetInstance()) != InstanceSize:
		return Identity{}, reject(ReasonMalformed, "instance is %d bytes, want %d", len(h.GetInstance()), InstanceSize)
	case !validText(h.GetName(), MaxNameLen):
		return Identity{}, reject(ReasonMalformed, "name is not UTF-8 text of at most %d bytes", MaxNameLen)
	case !validText(h.GetSoftwareVersion(), MaxVersionLen):
		return Identity{}, reject(ReasonMalformed, "software version is not UTF-8 text of at most %d bytes", MaxVersionLen)
	case !validText(h.GetJustification(), MaxJustificationLen):
		return Identity{}, reject(ReasonMalformed, "justification is not UTF-8 text of at most %d bytes", MaxJustificationLen)
	case len(h.GetListenAddrs()) > MaxAddrs:
		return Identity{}, reject(ReasonMalformed, "%d listen addresses, at most %d", len(h.GetListenAddrs()), MaxAddrs)
	}
	var role Role
	switch h.GetRole() {
	case pb.Role_ROLE_FULL:
		role = RoleFull
	case pb.Role_ROLE_CLIENT:
		role = RoleClient
	default:
		return Identity{}, reject(ReasonMalformed, "unknown role %d", h.GetRole())
	}
	addrs := make([]ma.Multiaddr, 0, len(h.GetListenAddrs()))
	for i, b := range h.GetListenAddrs() {
		if len(b) > MaxAddrLen {
			return Identity{}, reject(ReasonMalformed, "listen address %d is %d bytes, at most %d", i, len(b), MaxAddrLen)
		}
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return Identity{}, reject(ReasonMalformed, "listen address %d: %v", i, err)
		}
		addrs = append(addrs, a)
	}
	return Identity{
		Name:          h.GetName(),
		Role:          role,
		Version:       h.GetSoftwareVersion(),
		ListenAddrs:   addrs,
		Instance:      fmt.Sprintf("%x", h.GetInstance()),
		Justification: h.GetJustification(),
	}, nil
}

func validText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s)
}

// clip shortens s to at most n bytes, marking the cut with "..." and
// never splitting a UTF-8 sequence.
func clip(s string, n int) string {
	const mark = "..."
	if len(s) <= n {
		return s
	}
	if n < len(mark) {
		return mark[:n]
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// side marks whose proof a signature is, so the initiator's proof cannot be
// reflected back as the responder's.
type side byte

const (
	sideInitiator side = 'I'
	sideResponder side = 'R'
)

// transcriptLabel separates this transcript from anything else a node key
// might sign.
const transcriptLabel = "peernode handshake transcript v1"

// transcript hashes what both proofs bind: the network, both peer IDs and
// both hellos as sent (which carry both nonces, so a proof recorded on one
// connection fails on any other). Fields are length-prefixed so no two
// inputs encode alike.
func transcript(networkID string, initiator, responder peer.ID, helloI, helloR []byte) []byte {
	h := sha256.New()
	for _, f := range [][]byte{[]byte(transcriptLabel), []byte(networkID), []byte(initiator), []byte(responder), helloI, helloR} {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write(f)
	}
	return h.Sum(nil)
}

func proofInput(s side, t []byte) []byte {
	return append([]byte{byte(s)}, t...)
}

// makeProof signs the transcript with the node key and MACs it with the
// handshake key.
func makeProof(key crypto.PrivKey, hkey []byte, s side, t []byte) (*pb.Proof, error) {
	in := proofInput(s, t)
	sig, err := key.Sign(in)
	if err != nil {
		return nil, fmt.Errorf("sign handshake transcript: %w", err)
	}
	m := hmac.New(sha256.New, hkey)
	m.Write(in)
	return &pb.Proof{Signature: sig, Mac: m.Sum(nil)}, nil
}

// checkProof verifies a peer's proof against the public key its secure
// channel authenticated and the network's handshake key.
func checkProof(pub crypto.PubKey, hkey []byte, s side, t []byte, p *pb.Proof) *RejectError {
	in := proofInput(s, t)
	if pub == nil {
		return reject(ReasonBadProof, "the connection carries no authenticated key")
	}
	ok, err := pub.Verify(in, p.GetSignature())
	if err != nil || !ok {
		return reject(ReasonBadProof, "signature does not match the connection's key")
	}
	m := hmac.New(sha256.New, hkey)
	m.Write(in)
	if !hmac.Equal(m.Sum(nil), p.GetMac()) {
		return reject(ReasonBadProof, "membership proof does not match this network's secret")
	}
	return nil
}

// Policy is the local trust policy.
type Policy int

// Policies.
const (
	// PolicyOpen accepts every member that passes the proofs, except those
	// an operator denied.
	PolicyOpen Policy = iota
	// PolicyAllowlist accepts only node IDs the trust store allows.
	PolicyAllowlist
	// PolicyManual accepts allowed node IDs and holds unknown members as
	// pending until an operator approves or rejects them.
	PolicyManual
)

// ParsePolicy parses "open", "allowlist" or "manual".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "open":
		return PolicyOpen, nil
	case "allowlist":
		return PolicyAllowlist, nil
	case "manual":
		return PolicyManual, nil
	}
	return 0, fmt.Errorf("trust policy %q: want open, allowlist or manual", s)
}

func (p Policy) String() string {
	switch p {
	case PolicyOpen:
		return "open"
	case PolicyAllowlist:
		return "allowlist"
	case PolicyManual:
		return "manual"
	}
	return fmt.Sprintf("policy_%d", int(p))
}

// Decision is an operator's recorded decision about a node.
type Decision string

// Decisions.
const (
	DecisionNone  Decision = ""
	DecisionAllow Decision = "allow"
	DecisionDeny  Decision = "deny"
)

// Decide applies the trust policy to a peer that proved itself.
func Decide(p Policy, d Decision, pendingFull bool) (Outcome, *RejectError) {
	if d == DecisionDeny {
		return Rejected, reject(ReasonNotAllowed, "an operator denied this node")
	}
	if d == DecisionAllow {
		return Verified, nil
	}
	switch p {
	case PolicyOpen:
		return Verified, nil
	case PolicyAllowlist:
		return Rejected, reject(ReasonNotAllowed, "this node is not on the allowlist")
	}
	if pendingFull {
		rej := reject(ReasonPendingFull, "too many nodes await approval")
		rej.RetryAfter = time.Minute
		return Rejected, rej
	}
	return Pending, nil
}
