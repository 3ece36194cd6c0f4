package handshake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peernode/protocols/handshake/pb"
)

// requireReject checks that rej is our own rejection for reason want.
func requireReject(t *testing.T, want Reason, rej *RejectError) {
	t.Helper()
	require.NotNil(t, rej, "want a %s rejection", want)
	require.Equal(t, want, rej.Reason, "rejection: %v", rej)
	require.False(t, rej.Remote, "a local rejection must not be marked remote")
	require.NotEmpty(t, rej.Message)
}

// The checks run in the documented order: each step fixes the problem the
// previous one reported and uncovers the next.
func TestCheckHelloOrder(t *testing.T) {
	h := validHello()
	h.Magic = 0xdeadbeef
	h.MinVersion, h.MaxVersion = MaxVersion+1, MaxVersion+5
	h.NetworkId = "another-network"
	h.Nonce = h.Nonce[:7]
	h.TimestampMs = testNow.Add(-time.Hour).UnixMilli()

	steps := []struct {
		name string
		fix  func(*pb.Hello)
		want Reason // 0: accepted
	}{
		{"all wrong", func(*pb.Hello) {}, ReasonBadMagic},
		{"magic fixed", func(h *pb.Hello) { h.Magic = Magic }, ReasonIncompatibleVersion},
		{"version fixed", func(h *pb.Hello) { h.MinVersion, h.MaxVersion = MinVersion, MaxVersion }, ReasonWrongNetwork},
		{"network fixed", func(h *pb.Hello) { h.NetworkId = testNetwork }, ReasonMalformed},
		{"fields fixed", func(h *pb.Hello) { h.Nonce = bytes.Repeat([]byte{1}, NonceSize) }, ReasonClockSkew},
		{"clock fixed", func(h *pb.Hello) { h.TimestampMs = testNow.UnixMilli() }, 0},
	}
	for _, s := range steps {
		s.fix(h)
		_, rej := CheckHello(testLocal(), h)
		if s.want == 0 {
			require.Nil(t, rej, "%s", s.name)
			continue
		}
		requireReject(t, s.want, rej)
	}
}

func TestCheckHelloNil(t *testing.T) {
	_, rej := CheckHello(testLocal(), nil)
	requireReject(t, ReasonBadMagic, rej)
}

func TestCheckHelloVersions(t *testing.T) {
	cases := []struct {
		name     string
		min, max uint32
		want     Reason // 0: accepted
	}{
		{"exactly ours", MinVersion, MaxVersion, 0},
		{"wider below", 0, MaxVersion, 0},
		{"wider above", MinVersion, MaxVersion + 10, 0},
		{"everything", 0, math.MaxUint32, 0},
		{"all below", 0, MinVersion - 1, ReasonIncompatibleVersion},
		{"all above", MaxVersion + 1, MaxVersion + 3, ReasonIncompatibleVersion},
		{"far above", math.MaxUint32, math.MaxUint32, ReasonIncompatibleVersion},
		// An empty range is a malformed version field; it is checked with
		// the versions, before the network.
		{"empty range", MaxVersion + 1, MinVersion, ReasonMalformed},
		{"empty range, reversed wide", math.MaxUint32, 0, ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := validHello()
			h.MinVersion, h.MaxVersion = c.min, c.max
			_, rej := CheckHello(testLocal(), h)
			if c.want == 0 {
				require.Nil(t, rej)
				return
			}
			requireReject(t, c.want, rej)
		})
	}

	t.Run("empty range before network", func(t *testing.T) {
		h := validHello()
		h.MinVersion, h.MaxVersion = 3, 2
		h.NetworkId = "another-network"
		_, rej := CheckHello(testLocal(), h)
		requireReject(t, ReasonMalformed, rej)
	})
}

// longDNSAddr is a valid multiaddr of exactly MaxAddrLen bytes.
func longDNSAddr(t *testing.T) []byte {
	a, err := ma.NewMultiaddr("/dns/" + strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 70))
	require.NoError(t, err)
	require.Len(t, a.Bytes(), MaxAddrLen)
	return a.Bytes()
}

func TestCheckHelloMalformed(t *testing.T) {
	many := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = testAddrs[0].Bytes()
		}
		return out
	}
	cases := []struct {
		name   string
		mutate func(*pb.Hello)
	}{
		{"no nonce", func(h *pb.Hello) { h.Nonce = nil }},
		{"short nonce", func(h *pb.Hello) { h.Nonce = h.Nonce[:NonceSize-1] }},
		{"long nonce", func(h *pb.Hello) { h.Nonce = append(h.Nonce, 0) }},
		{"no instance", func(h *pb.Hello) { h.Instance = nil }},
		{"short instance", func(h *pb.Hello) { h.Instance = h.Instance[:InstanceSize-1] }},
		{"long instance", func(h *pb.Hello) { h.Instance = append(h.Instance, 0) }},
		{"long name", func(h *pb.Hello) { h.Name = strings.Repeat("n", MaxNameLen+1) }},
		{"long name, multibyte", func(h *pb.Hello) { h.Name = strings.Repeat("é", MaxNameLen/2) + "x" }},
		{"name not UTF-8", func(h *pb.Hello) { h.Name = "bad\xffname" }},
		{"long version", func(h *pb.Hello) { h.SoftwareVersion = strings.Repeat("v", MaxVersionLen+1) }},
		{"version not UTF-8", func(h *pb.Hello) { h.SoftwareVersion = "v1\xc3" }},
		{"long justification", func(h *pb.Hello) { h.Justification = strings.Repeat("j", MaxJustificationLen+1) }},
		{"justification not UTF-8", func(h *pb.Hello) { h.Justification = "\xed\xa0\x80" }}, // a surrogate
		{"too many addresses", func(h *pb.Hello) { h.ListenAddrs = many(MaxAddrs + 1) }},
		{"oversize address", func(h *pb.Hello) { h.ListenAddrs = [][]byte{bytes.Repeat([]byte{4}, MaxAddrLen+1)} }},
		{"oversize address after good ones", func(h *pb.Hello) { h.ListenAddrs = append(h.ListenAddrs, make([]byte, MaxAddrLen+1)) }},
		{"empty address", func(h *pb.Hello) { h.ListenAddrs = [][]byte{{}} }},
		{"unparsable address", func(h *pb.Hello) { h.ListenAddrs = [][]byte{{0xff, 0xff}} }},
		{"truncated ip4 address", func(h *pb.Hello) { h.ListenAddrs = [][]byte{{0x04, 127, 0}} }},
		{"unknown protocol code", func(h *pb.Hello) { h.ListenAddrs = [][]byte{{0xfe, 0xff, 0x03, 1, 2}} }},
		{"bad address after good ones", func(h *pb.Hello) { h.ListenAddrs = append(h.ListenAddrs, []byte("garbage")) }},
		{"unspecified role", func(h *pb.Hello) { h.Role = pb.Role_ROLE_UNSPECIFIED }},
		{"unknown role", func(h *pb.Hello) { h.Role = pb.Role(3) }},
		{"negative role", func(h *pb.Hello) { h.Role = pb.Role(-1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := validHello()
			c.mutate(h)
			id, rej := CheckHello(testLocal(), h)
			requireReject(t, ReasonMalformed, rej)
			require.Equal(t, Identity{}, id, "a rejected hello yields no identity")
		})
	}
}

// Every field at its limit is still accepted.
func TestCheckHelloLimitsAccepted(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*pb.Hello)
	}{
		{"minimal", func(h *pb.Hello) { h.Name, h.SoftwareVersion, h.Justification, h.ListenAddrs = "", "", "", nil }},
		{"full role", func(h *pb.Hello) { h.Role = pb.Role_ROLE_FULL }},
		{"name at limit", func(h *pb.Hello) { h.Name = strings.Repeat("é", MaxNameLen/2) }},
		{"version at limit", func(h *pb.Hello) { h.SoftwareVersion = strings.Repeat("v", MaxVersionLen) }},
		{"justification at limit", func(h *pb.Hello) { h.Justification = strings.Repeat("j", MaxJustificationLen) }},
		{"addresses at limit", func(h *pb.Hello) {
			h.ListenAddrs = nil
			for range MaxAddrs {
				h.ListenAddrs = append(h.ListenAddrs, testAddrs[1].Bytes())
			}
		}},
		{"address at limit", func(h *pb.Hello) { h.ListenAddrs = [][]byte{longDNSAddr(t)} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := validHello()
			c.mutate(h)
			_, rej := CheckHello(testLocal(), h)
			require.Nil(t, rej)
		})
	}
}

func TestCheckHelloClockSkew(t *testing.T) {
	const limit = 5 * time.Minute
	cases := []struct {
		name   string
		offset time.Duration // hello's clock minus ours
		skew   time.Duration
		ok     bool
	}{
		{"same clock", 0, limit, true},
		{"behind, at the limit", -limit, limit, true},
		{"ahead, at the limit", limit, limit, true},
		{"behind, just past", -limit - time.Millisecond, limit, false},
		{"ahead, just past", limit + time.Millisecond, limit, false},
		{"behind, far", -48 * time.Hour, limit, false},
		{"ahead, far", 48 * time.Hour, limit, false},
		{"zero skew allowed, same ms", 0, 0, true},
		{"zero skew allowed, 1ms ahead", time.Millisecond, 0, false},
		{"zero skew allowed, 1ms behind", -time.Millisecond, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := validHello()
			h.TimestampMs = testNow.Add(c.offset).UnixMilli()
			l := testLocal()
			l.MaxClockSkew = c.skew
			_, rej := CheckHello(l, h)
			if c.ok {
				require.Nil(t, rej)
				return
			}
			requireReject(t, ReasonClockSkew, rej)
		})
	}

	const year = 365 * 24 * 3600 * 1000 // in ms
	for _, ms := range []int64{0, math.MinInt64, testNow.UnixMilli() - 300*year} {
		h := validHello()
		h.TimestampMs = ms
		_, rej := CheckHello(testLocal(), h)
		requireReject(t, ReasonClockSkew, rej)
	}
}

// A timestamp more than ~292 years ahead overflows time.Duration:
// l.Now.Sub(ts) saturates to math.MinInt64, whose negation is itself, so
// the skew is negative and passes the check.
func TestCheckHelloFarFutureTimestamp(t *testing.T) {
	const year = 365 * 24 * 3600 * 1000 // in ms
	for _, ms := range []int64{math.MaxInt64, testNow.UnixMilli() + 300*year} {
		h := validHello()
		h.TimestampMs = ms
		_, rej := CheckHello(testLocal(), h)
		requireReject(t, ReasonClockSkew, rej)
	}
}

func TestCheckHelloIdentity(t *testing.T) {
	h := validHello()
	h.ListenAddrs = append(h.ListenAddrs, longDNSAddr(t))
	id, rej := CheckHello(testLocal(), h)
	require.Nil(t, rej)
	require.Equal(t, "alice", id.Name)
	require.Equal(t, RoleClient, id.Role)
	require.Equal(t, "v1.2.3", id.Version)
	require.Equal(t, "please let me in", id.Justification)
	require.Equal(t, "000102030405060708090a0b0c0d0e0f", id.Instance)
	require.Equal(t, hex.EncodeToString(h.Instance), id.Instance)
	require.Len(t, id.ListenAddrs, 3)
	require.True(t, id.ListenAddrs[0].Equal(testAddrs[0]), "%s", id.ListenAddrs[0])
	require.True(t, id.ListenAddrs[1].Equal(testAddrs[1]), "%s", id.ListenAddrs[1])
	require.Equal(t, h.ListenAddrs[2], id.ListenAddrs[2].Bytes())

	h.Role = pb.Role_ROLE_FULL
	id, rej = CheckHello(testLocal(), h)
	require.Nil(t, rej)
	require.Equal(t, RoleFull, id.Role)
}

// clip cuts at a byte offset: the message of a rejection can end in half a
// rune, and a proto3 string must be UTF-8, so sendResult cannot encode the
// rejection at all and the peer never learns why it was refused. It also
// returns 3 bytes more than asked, past the 256 bytes handshake.proto
// promises.
func TestRejectionMessageStaysSendable(t *testing.T) {
	t.Run("long non-ASCII message", func(t *testing.T) {
		rej := reject(ReasonNotAllowed, "revoked: %s", strings.Repeat("é", 200)) // byte 256 falls inside a rune
		var buf bytes.Buffer
		ss := &session{str: &buf}
		require.NoError(t, ss.sendResult(Rejected, rej))
		f, err := newFrameReader(&buf).next()
		require.NoError(t, err)
		require.True(t, utf8.ValidString(f.GetResult().GetMessage()))
	})
	t.Run("peer's network ID", func(t *testing.T) {
		h := validHello()
		h.NetworkId = "a" + strings.Repeat("\x01", 58) + "éé" // %q turns each \x01 into 4 bytes: the second é straddles byte 256
		_, rej := CheckHello(testLocal(), h)
		requireReject(t, ReasonWrongNetwork, rej)
		var buf bytes.Buffer
		ss := &session{str: &buf}
		require.NoError(t, ss.sendResult(Rejected, rej))
	})
	t.Run("clip length", func(t *testing.T) {
		require.LessOrEqual(t, len(clip(strings.Repeat("x", 1000), MaxMessageLen)), MaxMessageLen)
	})
	t.Run("ASCII message", func(t *testing.T) {
		rej := reject(ReasonNotAllowed, "%s", strings.Repeat("x", 1000))
		var buf bytes.Buffer
		ss := &session{str: &buf}
		require.NoError(t, ss.sendResult(Rejected, rej))
		f, err := newFrameReader(&buf).next()
		require.NoError(t, err)
		r := f.GetResult()
		require.Equal(t, pb.Outcome_REJECTED, r.GetOutcome())
		require.Equal(t, pb.Reason_NOT_ALLOWED, r.GetReason())
		require.True(t, strings.HasPrefix(r.GetMessage(), strings.Repeat("x", 200)))
	})
	t.Run("wrong network names both networks", func(t *testing.T) {
		h := validHello()
		h.NetworkId = strings.Repeat("é", 40) // 80 bytes, clipped at 64 inside %q
		_, rej := CheckHello(testLocal(), h)
		requireReject(t, ReasonWrongNetwork, rej)
		require.True(t, utf8.ValidString(rej.Message), "%q", rej.Message)
		require.Contains(t, rej.Message, testNetwork)
	})
}

func TestTranscript(t *testing.T) {
	_, idA := seededKey(t, 1)
	_, idB := seededKey(t, 2)
	_, idC := seededKey(t, 3)
	hI, hR := []byte("hello of the initiator"), []byte("hello of the responder")

	base := transcript(testNetwork, idA, idB, hI, hR)
	require.Len(t, base, sha256.Size)
	require.Equal(t, base, transcript(testNetwork, idA, idB, bytes.Clone(hI), bytes.Clone(hR)), "deterministic")

	others := map[string][]byte{
		"network":        transcript(testNetwork+"x", idA, idB, hI, hR),
		"no network":     transcript("", idA, idB, hI, hR),
		"initiator":      transcript(testNetwork, idC, idB, hI, hR),
		"responder":      transcript(testNetwork, idA, idC, hI, hR),
		"roles swapped":  transcript(testNetwork, idB, idA, hI, hR),
		"hello I":        transcript(testNetwork, idA, idB, []byte("hello of the initiatoR"), hR),
		"hello R":        transcript(testNetwork, idA, idB, hI, []byte("hello of the responder!")),
		"hellos swapped": transcript(testNetwork, idA, idB, hR, hI),
		"no hellos":      transcript(testNetwork, idA, idB, nil, nil),
	}
	seen := map[string]string{hex.EncodeToString(base): "base"}
	for name, tr := range others {
		require.Len(t, tr, sha256.Size)
		k := hex.EncodeToString(tr)
		prev, dup := seen[k]
		require.False(t, dup, "%s and %s give the same transcript", name, prev)
		seen[k] = name
	}
}

// Moving a byte across the boundary of two adjacent fields keeps their
// concatenation but must change the transcript.
func TestTranscriptLengthPrefixes(t *testing.T) {
	type in struct {
		net        string
		init, resp peer.ID
		hI, hR     []byte
	}
	pairs := []struct {
		name string
		a, b in
	}{
		{"network|initiator", in{"ab", "c", "d", []byte("e"), []byte("f")}, in{"a", "bc", "d", []byte("e"), []byte("f")}},
		{"initiator|responder", in{"n", "ab", "c", []byte("e"), []byte("f")}, in{"n", "a", "bc", []byte("e"), []byte("f")}},
		{"responder|hello I", in{"n", "i", "ab", []byte("c"), []byte("f")}, in{"n", "i", "a", []byte("bc"), []byte("f")}},
		{"hello I|hello R", in{"n", "i", "r", []byte("abc"), []byte("d")}, in{"n", "i", "r", []byte("ab"), []byte("cd")}},
		{"all in one hello", in{"n", "i", "r", []byte("abcd"), nil}, in{"n", "i", "r", nil, []byte("abcd")}},
	}
	concat := func(x in) []byte {
		return []byte(transcriptLabel + x.net + string(x.init) + string(x.resp) + string(x.hI) + string(x.hR))
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			require.Equal(t, concat(p.a), concat(p.b), "the pair must differ only in where a field ends")
			ta := transcript(p.a.net, p.a.init, p.a.resp, p.a.hI, p.a.hR)
			tb := transcript(p.b.net, p.b.init, p.b.resp, p.b.hI, p.b.hR)
			require.NotEqual(t, ta, tb)
		})
	}
}

func TestProof(t *testing.T) {
	keyI, idI := seededKey(t, 1)
	keyR, idR := seededKey(t, 2)
	other, _ := seededKey(t, 3)
	hkey := []byte("network handshake key, 32 bytes!")
	tr := transcript(testNetwork, idI, idR, []byte("hI"), []byte("hR"))
	otherTr := transcript(testNetwork, idI, idR, []byte("hI"), []byte("hR2"))

	proofI, err := makeProof(keyI, hkey, sideInitiator, tr)
	require.NoError(t, err)
	proofR, err := makeProof(keyR, hkey, sideResponder, tr)
	require.NoError(t, err)
	require.Nil(t, checkProof(keyI.GetPublic(), hkey, sideInitiator, tr, proofI))
	require.Nil(t, checkProof(keyR.GetPublic(), hkey, sideResponder, tr, proofR))
	require.Len(t, proofI.GetMac(), sha256.Size)

	withKey := func(k crypto.PrivKey, hk []byte, s side, tr []byte) *pb.Proof {
		p, err := makeProof(k, hk, s, tr)
		require.NoError(t, err)
		return p
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	rawSig, err := keyI.Sign(tr) // over the transcript without the side byte
	require.NoError(t, err)

	cases := []struct {
		name string
		pub  crypto.PubKey
		hkey []byte
		side side
		tr   []byte
		p    *pb.Proof
	}{
		{"initiator proof checked as responder", keyI.GetPublic(), hkey, sideResponder, tr, proofI},
		{"responder proof checked as initiator", keyR.GetPublic(), hkey, sideInitiator, tr, proofR},
		{"reflected: responder's key, initiator's proof", keyR.GetPublic(), hkey, sideResponder, tr, proofI},
		{"wrong key", other.GetPublic(), hkey, sideInitiator, tr, proofI},
		{"signed by another key", keyI.GetPublic(), hkey, sideInitiator, tr, withKey(other, hkey, sideInitiator, tr)},
		{"wrong handshake key", keyI.GetPublic(), []byte("another network's key"), sideInitiator, tr, proofI},
		{"nil handshake key", keyI.GetPublic(), nil, sideInitiator, tr, proofI},
		{"MAC with another handshake key", keyI.GetPublic(), hkey, sideInitiator, tr, withKey(keyI, []byte("x"), sideInitiator, tr)},
		{"other transcript", keyI.GetPublic(), hkey, sideInitiator, otherTr, proofI},
		{"nil key", nil, hkey, sideInitiator, tr, proofI},
		{"truncated signature", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: proofI.Signature[:len(proofI.Signature)-1], Mac: proofI.Mac}},
		{"no signature", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Mac: proofI.Mac}},
		{"flipped signature", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: flip(proofI.Signature, 5), Mac: proofI.Mac}},
		{"signature without side", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: rawSig, Mac: proofI.Mac}},
		{"truncated mac", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: proofI.Signature, Mac: proofI.Mac[:len(proofI.Mac)-1]}},
		{"no mac", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: proofI.Signature}},
		{"flipped mac", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{Signature: proofI.Signature, Mac: flip(proofI.Mac, 31)}},
		{"empty proof", keyI.GetPublic(), hkey, sideInitiator, tr, &pb.Proof{}},
		{"nil proof", keyI.GetPublic(), hkey, sideInitiator, tr, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireReject(t, ReasonBadProof, checkProof(c.pub, c.hkey, c.side, c.tr, c.p))
		})
	}

	t.Run("other key types", func(t *testing.T) {
		sk, _, err := crypto.GenerateSecp256k1Key(nil)
		require.NoError(t, err)
		p := withKey(sk, hkey, sideResponder, tr)
		require.Nil(t, checkProof(sk.GetPublic(), hkey, sideResponder, tr, p))
		// An Ed25519 signature checked against a secp256k1 key, and back.
		requireReject(t, ReasonBadProof, checkProof(sk.GetPublic(), hkey, sideInitiator, tr, proofI))
		requireReject(t, ReasonBadProof, checkProof(keyI.GetPublic(), hkey, sideResponder, tr, p))
	})
}

func TestCombine(t *testing.T) {
	cases := []struct{ local, remote, want Outcome }{
		{Verified, Verified, Verified},
		{Verified, Pending, Pending},
		{Verified, Rejected, Rejected},
		{Pending, Verified, Pending},
		{Pending, Pending, Pending},
		{Pending, Rejected, Rejected},
		{Rejected, Verified, Rejected},
		{Rejected, Pending, Rejected},
		{Rejected, Rejected, Rejected},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Combine(c.local, c.remote), "%s + %s", c.local, c.remote)
	}
	// The zero value is not an outcome: it never makes a session verified.
	for _, o := range []Outcome{0, Verified, Pending, Rejected} {
		require.NotEqual(t, Verified, Combine(0, o))
		require.NotEqual(t, Verified, Combine(o, 0))
	}
}

func TestDecide(t *testing.T) {
	const none, allow, deny, bogus = DecisionNone, DecisionAllow, DecisionDeny, Decision("maybe")
	cases := []struct {
		policy      Policy
		decision    Decision
		pendingFull bool
		want        Outcome
		reason      Reason
	}{
		{PolicyOpen, none, false, Verified, 0},
		{PolicyOpen, none, true, Verified, 0},
		{PolicyOpen, allow, false, Verified, 0},
		{PolicyOpen, allow, true, Verified, 0},
		{PolicyOpen, deny, false, Rejected, ReasonNotAllowed},
		{PolicyOpen, deny, true, Rejected, ReasonNotAllowed},
		{PolicyOpen, bogus, false, Verified, 0},
		{PolicyOpen, bogus, true, Verified, 0},

		{PolicyAllowlist, none, false, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, none, true, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, allow, false, Verified, 0},
		{PolicyAllowlist, allow, true, Verified, 0},
		{PolicyAllowlist, deny, false, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, deny, true, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, bogus, false, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, bogus, true, Rejected, ReasonNotAllowed},

		{PolicyManual, none, false, Pending, 0},
		{PolicyManual, none, true, Rejected, ReasonPendingFull},
		{PolicyManual, allow, false, Verified, 0},
		{PolicyManual, allow, true, Verified, 0},
		{PolicyManual, deny, false, Rejected, ReasonNotAllowed},
		{PolicyManual, deny, true, Rejected, ReasonNotAllowed},
		{PolicyManual, bogus, false, Pending, 0},
		{PolicyManual, bogus, true, Rejected, ReasonPendingFull},
	}
	for _, c := range cases {
		got, rej := Decide(c.policy, c.decision, c.pendingFull)
		name := string(c.decision)
		require.Equal(t, c.want, got, "%s / %q / full=%v", c.policy, name, c.pendingFull)
		if c.want != Rejected {
			require.Nil(t, rej, "%s / %q / full=%v", c.policy, name, c.pendingFull)
			continue
		}
		requireReject(t, c.reason, rej)
	}
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		ReasonBadMagic:            "bad_magic",
		ReasonIncompatibleVersion: "incompatible_version",
		ReasonWrongNetwork:        "wrong_network",
		ReasonBadProof:            "bad_proof",
		ReasonClockSkew:           "clock_skew",
		ReasonNotAllowed:          "not_allowed",
		ReasonPendingFull:         "pending_full",
		ReasonBanned:              "banned",
		ReasonDuplicate:           "duplicate",
		ReasonTimeout:             "timeout",
		ReasonMalformed:           "malformed",
	}
	require.Len(t, want, 11)
	for r, name := range want {
		require.Equal(t, name, r.String())
	}
	// Every wire reason but the unspecified one has a name here.
	require.Len(t, pb.Reason_name, len(want)+1, "a reason was added to the wire: name it here")
	require.Equal(t, "reason_0", Reason(0).String())
	require.Equal(t, "reason_12", Reason(12).String())
	require.Equal(t, "reason_-1", Reason(-1).String())
}

func TestReasonBans(t *testing.T) {
	bans := map[Reason]bool{ReasonWrongNetwork: true, ReasonBanned: true, ReasonNotAllowed: true}
	for v := range pb.Reason_name {
		r := Reason(v)
		require.Equal(t, bans[r], r.Bans(), "%s", r)
	}
	require.False(t, Reason(99).Bans())
}

func TestRejectErrorString(t *testing.T) {
	local := &RejectError{Reason: ReasonClockSkew, Message: "clocks differ"}
	require.Equal(t, "handshake failed: we rejected the peer: clock_skew: clocks differ", local.Error())
	remote := &RejectError{Reason: ReasonPendingFull, RetryAfter: time.Minute, Remote: true}
	require.Equal(t, "handshake failed: the peer rejected us: pending_full (retry after 1m0s)", remote.Error())
}

func TestOutcomeString(t *testing.T) {
	require.Equal(t, "verified", Verified.String())
	require.Equal(t, "pending", Pending.String())
	require.Equal(t, "rejected", Rejected.String())
	require.Equal(t, "unknown", Outcome(0).String())
	require.Equal(t, "unknown", Outcome(4).String())
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"full", "client"} {
		r, err := ParseRole(s)
		require.NoError(t, err)
		require.Equal(t, Role(s), r)
	}
	for _, s := range []string{"", "Full", "CLIENT", "server", " full"} {
		_, err := ParseRole(s)
		require.Error(t, err, "%q", s)
	}
	require.Equal(t, pb.Role_ROLE_FULL, RoleFull.wire())
	require.Equal(t, pb.Role_ROLE_CLIENT, RoleClient.wire())
}

func TestParsePolicy(t *testing.T) {
	for s, want := range map[string]Policy{"open": PolicyOpen, "allowlist": PolicyAllowlist, "manual": PolicyManual} {
		p, err := ParsePolicy(s)
		require.NoError(t, err)
		require.Equal(t, want, p)
		require.Equal(t, s, p.String())
	}
	for _, s := range []string{"", "Open", "allow", "deny", "manual "} {
		_, err := ParsePolicy(s)
		require.Error(t, err, "%q", s)
	}
}

func TestPolicyStringOutOfRange(t *testing.T) {
	require.NotPanics(t, func() { _ = Policy(3).String() })
	require.NotPanics(t, func() { _ = Policy(-1).String() })
}
