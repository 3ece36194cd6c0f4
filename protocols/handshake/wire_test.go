package handshake

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"peernode/protocols/handshake/pb"
)

// countingReader counts the bytes its reader handed out.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func uvarint(n uint64) []byte { return binary.AppendUvarint(nil, n) }

func testFrames(t testing.TB) []*pb.Frame {
	key, _ := seededKey(t, 1)
	p, err := makeProof(key, []byte("hkey"), sideInitiator, bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	return []*pb.Frame{
		helloFrame(validHello()),
		proofFrame(p),
		resultFrame(&pb.Result{Outcome: pb.Outcome_VERIFIED}),
		resultFrame(&pb.Result{Outcome: pb.Outcome_REJECTED, Reason: pb.Reason_WRONG_NETWORK, Message: "go away", RetryAfterS: 60}),
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range testFrames(t) {
		b, err := encodeFrame(f)
		require.NoError(t, err)
		n, k := binary.Uvarint(b)
		require.Positive(t, k)
		require.Equal(t, uint64(proto.Size(f)), n)
		require.Len(t, b, k+int(n))

		got, err := DecodeFrame(b[k:])
		require.NoError(t, err)
		require.True(t, proto.Equal(f, got), "DecodeFrame: %v", got)

		got, err = newFrameReader(bytes.NewReader(b)).next()
		require.NoError(t, err)
		require.True(t, proto.Equal(f, got), "frameReader: %v", got)

		var buf bytes.Buffer
		require.NoError(t, writeFrame(&buf, f))
		require.Equal(t, b, buf.Bytes())
	}
}

// helloOfSize returns a hello frame whose encoding is exactly size bytes.
func helloOfSize(t *testing.T, size int) *pb.Frame {
	for n := size - 16; n <= size; n++ {
		f := helloFrame(&pb.Hello{Magic: Magic, Name: strings.Repeat("a", n)})
		if proto.Size(f) == size {
			return f
		}
	}
	t.Fatalf("no hello of %d bytes", size)
	return nil
}

func TestFrameSizeLimit(t *testing.T) {
	atLimit := helloOfSize(t, MaxFrameSize)
	b, err := encodeFrame(atLimit)
	require.NoError(t, err, "a frame of exactly MaxFrameSize is allowed")
	got, err := newFrameReader(bytes.NewReader(b)).next()
	require.NoError(t, err)
	require.True(t, proto.Equal(atLimit, got))

	over := helloOfSize(t, MaxFrameSize+1)
	_, err = encodeFrame(over)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	require.ErrorIs(t, writeFrame(io.Discard, over), ErrFrameTooLarge)

	body, err := proto.Marshal(over)
	require.NoError(t, err)
	_, err = DecodeFrame(body)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	_, err = DecodeFrame(make([]byte, 1<<20))
	require.ErrorIs(t, err, ErrFrameTooLarge)

	// On a stream, the length prefix alone is refused.
	stream := append(uvarint(uint64(len(body))), body...)
	_, err = newFrameReader(bytes.NewReader(stream)).next()
	require.ErrorIs(t, err, ErrFrameTooLarge)
}

func TestDecodeFrameMalformed(t *testing.T) {
	valid := frameBody(t, helloFrame(validHello()))
	badUTF8 := protowire.AppendTag(nil, 1, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "\xff\xfe"))
	cases := map[string][]byte{
		"nil":                   nil,
		"empty":                 {},
		"one garbage byte":      {0xff},
		"text":                  []byte("GET / HTTP/1.1\r\n\r\n"),
		"truncated":             valid[:len(valid)-1],
		"only an unknown field": protowire.AppendVarint(protowire.AppendTag(nil, 15, protowire.VarintType), 1),
		"wrong wire type":       protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
		"name not UTF-8":        badUTF8,
		"varint overflow":       bytes.Repeat([]byte{0xff}, 11),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := DecodeFrame(b)
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, f)
		})
	}

	// An empty body of a known kind is still a frame of that kind.
	f, err := DecodeFrame(protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil))
	require.NoError(t, err)
	require.NotNil(t, f.GetResult())
}

// The reader hands out one frame per call and never reads past it, so the
// stream can carry other data after the handshake.
func TestFrameReaderOneFrameAtATime(t *testing.T) {
	frames := testFrames(t)
	var stream []byte
	var ends []int
	for _, f := range frames {
		b, err := encodeFrame(f)
		require.NoError(t, err)
		stream = append(stream, b...)
		ends = append(ends, len(stream))
	}
	const tail = "the rest of the stream"
	stream = append(stream, tail...)

	for _, name := range []string{"whole", "one byte at a time"} {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(stream)
			if name != "whole" {
				r = iotest.OneByteReader(r)
			}
			cr := &countingReader{r: r}
			fr := newFrameReader(cr)
			var got []*pb.Frame
			for i := range frames {
				f, err := fr.next()
				require.NoError(t, err)
				require.Equal(t, ends[i], cr.n, "frame %d: read past its end", i)
				got = append(got, f)
			}
			rest, err := io.ReadAll(cr)
			require.NoError(t, err)
			require.Equal(t, tail, string(rest))
			// Decoded frames own their bytes: reading on does not change them.
			for i := range frames {
				require.True(t, proto.Equal(frames[i], got[i]), "frame %d changed: %v", i, got[i])
			}
		})
	}

	_, err := newFrameReader(bytes.NewReader(nil)).next()
	require.ErrorIs(t, err, io.EOF, "a stream closed between frames")
}

// A prefix announcing a huge frame is refused before its body is read or
// allocated.
func TestFrameReaderOversizePrefix(t *testing.T) {
	for _, n := range []uint64{MaxFrameSize + 1, 1 << 30, 1 << 62} {
		prefix := uvarint(n)
		cr := &countingReader{r: io.MultiReader(bytes.NewReader(prefix), strings.NewReader("body bytes"))}
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		f, err := newFrameReader(cr).next()
		runtime.ReadMemStats(&ms1)
		require.ErrorIs(t, err, ErrFrameTooLarge, "announced %d", n)
		require.Nil(t, f)
		require.Equal(t, len(prefix), cr.n, "announced %d: read beyond the prefix", n)
		require.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(1<<20), "announced %d: allocated it", n)
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	full, err := encodeFrame(helloFrame(validHello()))
	require.NoError(t, err)
	_, k := binary.Uvarint(full)

	cases := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"body cut short", full[:len(full)-1], io.ErrUnexpectedEOF},
		{"half the body", full[:k+(len(full)-k)/2], io.ErrUnexpectedEOF},
		// msgio's io.ReadFull reports a body of which nothing came as EOF.
		{"prefix only", full[:k], io.EOF},
		{"half a prefix", []byte{0x80}, nil},
		{"zero-length frame", []byte{0x00}, ErrMalformed},
		{"garbage frame", append(uvarint(4), 0xde, 0xad, 0xbe, 0xef), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f *pb.Frame
			var err error
			require.NotPanics(t, func() { f, err = newFrameReader(bytes.NewReader(c.stream)).next() })
			require.Error(t, err)
			require.Nil(t, f)
			if c.want != nil {
				require.ErrorIs(t, err, c.want)
			}
		})
	}
}

// A length prefix that is not a valid varint is a malformed frame like any
// other, so the responder answers it with a malformed rejection (asReject)
// instead of a bare reset.
func TestFrameReaderBadPrefixIsMalformed(t *testing.T) {
	for name, prefix := range map[string][]byte{
		"not minimal": {0x81, 0x00},
		"overflow":    bytes.Repeat([]byte{0xff}, 10),
	} {
		_, err := newFrameReader(bytes.NewReader(append(prefix, 1, 2, 3))).next()
		require.ErrorIs(t, err, ErrMalformed, "%s: %v", name, err)
	}
}

// Fuzzing: every decoder of peer input.

var fuzzLocal = Local{NetworkID: testNetwork, Now: testNow, MaxClockSkew: DefaultMaxClockSkew}

// helloReasons are the rejections CheckHello may give.
var helloReasons = map[Reason]bool{
	ReasonBadMagic: true, ReasonIncompatibleVersion: true, ReasonWrongNetwork: true,
	ReasonMalformed: true, ReasonClockSkew: true,
}

func FuzzDecodeHello(f *testing.F) {
	add := func(h *pb.Hello) { f.Add(frameBody(f, helloFrame(h))) }
	add(validHello())
	add(&pb.Hello{})
	for _, mutate := range []func(*pb.Hello){
		func(h *pb.Hello) { h.Magic++ },
		func(h *pb.Hello) { h.MinVersion, h.MaxVersion = 2, 9 },
		func(h *pb.Hello) { h.MinVersion, h.MaxVersion = 2, 1 },
		func(h *pb.Hello) { h.NetworkId = strings.Repeat("é", 50) },
		func(h *pb.Hello) { h.Nonce = h.Nonce[:3] },
		func(h *pb.Hello) { h.ListenAddrs = append(h.ListenAddrs, []byte{0xff, 0xff}, []byte{0x04, 1}) },
		func(h *pb.Hello) { h.ListenAddrs = [][]byte{append([]byte{0x35, 0x05}, "\xff\xfe\xfd\xfc\xfb"...)} }, // dns with raw bytes
		func(h *pb.Hello) { h.Role = 7 },
		func(h *pb.Hello) { h.TimestampMs = 0 },
		func(h *pb.Hello) { h.TimestampMs = -1 },
		func(h *pb.Hello) { h.TimestampMs = math.MaxInt64 }, // known skew overflow bug
		func(h *pb.Hello) { h.Name = strings.Repeat("ü", 40) },
		func(h *pb.Hello) { h.NetworkId = "a" + strings.Repeat("\x01", 58) + "éé" }, // known clip bug
	} {
		h := validHello()
		mutate(h)
		add(h)
	}
	f.Add(frameBody(f, resultFrame(&pb.Result{Outcome: pb.Outcome_VERIFIED})))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0d})
	f.Add([]byte("\x0a\x05\x0d\x53\x48\x4e\x50")) // just the magic

	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("DecodeFrame: untyped error %v", err)
			}
			return
		}
		h := fr.GetHello()
		if h == nil {
			return
		}
		// The service keeps the hello's encoding for the transcript.
		if _, err := proto.Marshal(h); err != nil {
			t.Fatalf("a decoded hello does not encode again: %v", err)
		}
		id, rej := CheckHello(fuzzLocal, h)
		if rej != nil {
			if !helloReasons[rej.Reason] || rej.Remote {
				t.Fatalf("unexpected rejection %#v", rej)
			}
			if rej.Message == "" {
				t.Fatalf("rejection %s without a message", rej.Reason)
			}
			_ = rej.Error()
			// The service answers with this rejection: it must encode.
			ss := &session{str: struct {
				io.Reader
				io.Writer
			}{nil, io.Discard}}
			if err := ss.sendResult(Rejected, rej); err != nil {
				if !utf8.ValidString(clip(rej.Message, MaxMessageLen)) {
				}
				t.Fatalf("rejection %#v cannot be sent: %v", rej, err)
			}
			return
		}
		if h.GetMagic() != Magic || h.GetNetworkId() != testNetwork || len(h.GetNonce()) != NonceSize {
			t.Fatalf("accepted a hello that should fail: %v", h)
		}
		if id.Instance != hex.EncodeToString(h.GetInstance()) || len(id.ListenAddrs) != len(h.GetListenAddrs()) {
			t.Fatalf("identity %+v does not match hello %v", id, h)
		}
		for i, a := range id.ListenAddrs {
			if !bytes.Equal(a.Bytes(), h.GetListenAddrs()[i]) {
				t.Fatalf("address %d: %x parsed as %x", i, h.GetListenAddrs()[i], a.Bytes())
			}
		}
		if id.Role != RoleFull && id.Role != RoleClient {
			t.Fatalf("role %q", id.Role)
		}
		ts := h.GetTimestampMs()
		const maxMs = int64(DefaultMaxClockSkew / time.Millisecond)
		if ts < testNow.UnixMilli()-maxMs || ts > testNow.UnixMilli()+maxMs {
			if ts > testNow.UnixMilli()+int64(1<<63-1)/int64(time.Millisecond) {
			}
			t.Fatalf("accepted timestamp %d, %d ms from now", ts, ts-testNow.UnixMilli())
		}
	})
}

func FuzzDecodeProof(f *testing.F) {
	keyI, idI := seededKey(f, 1)
	keyR, idR := seededKey(f, 2)
	hkey := []byte("fuzz handshake key")
	tr := transcript(testNetwork, idI, idR, []byte("hI"), []byte("hR"))
	genuineI, err := makeProof(keyI, hkey, sideInitiator, tr)
	require.NoError(f, err)
	genuineR, err := makeProof(keyR, hkey, sideResponder, tr)
	require.NoError(f, err)
	wrongMac, err := makeProof(keyI, []byte("other"), sideInitiator, tr)
	require.NoError(f, err)

	for _, p := range []*pb.Proof{
		genuineI, genuineR, wrongMac,
		{Signature: genuineI.Signature},
		{Mac: genuineI.Mac},
		{Signature: genuineI.Signature[:10], Mac: genuineI.Mac[:10]},
		{Signature: genuineR.Signature, Mac: genuineI.Mac},
		{},
	} {
		f.Add(frameBody(f, proofFrame(p)))
	}
	f.Add(frameBody(f, helloFrame(validHello())))
	f.Add([]byte{0x12, 0x00})
	f.Add([]byte{0x12, 0x03, 0x0a, 0x01})

	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		p := fr.GetProof()
		if p == nil {
			return
		}
		check := func(pub crypto.PubKey, s side, genuine *pb.Proof) {
			rej := checkProof(pub, hkey, s, tr, p)
			isGenuine := bytes.Equal(p.GetSignature(), genuine.GetSignature()) && bytes.Equal(p.GetMac(), genuine.GetMac())
			switch {
			case isGenuine && rej != nil:
				t.Fatalf("genuine proof refused: %v", rej)
			case !isGenuine && rej == nil:
				t.Fatalf("forged proof accepted: sig %x mac %x", p.GetSignature(), p.GetMac())
			case !isGenuine && (rej.Reason != ReasonBadProof || rej.Remote):
				t.Fatalf("forged proof: %#v", rej)
			}
		}
		check(keyI.GetPublic(), sideInitiator, genuineI)
		check(keyR.GetPublic(), sideResponder, genuineR)
	})
}

func FuzzDecodeResult(f *testing.F) {
	for _, r := range []*pb.Result{
		{Outcome: pb.Outcome_VERIFIED},
		{Outcome: pb.Outcome_PENDING, Message: "an operator will look at it"},
		{Outcome: pb.Outcome_REJECTED, Reason: pb.Reason_BANNED, Message: "banned", RetryAfterS: 3600},
		{Outcome: pb.Outcome_REJECTED, Reason: pb.Reason_CLOCK_SKEW, RetryAfterS: 1<<32 - 1},
		{Outcome: pb.Outcome_REJECTED},
		{Outcome: pb.Outcome_REJECTED, Reason: 99, Message: strings.Repeat("é", 130)},
		{Outcome: pb.Outcome_OUTCOME_UNSPECIFIED},
		{Outcome: 42, Reason: pb.Reason_TIMEOUT},
		{Outcome: -1},
	} {
		f.Add(frameBody(f, resultFrame(r)))
	}
	f.Add(frameBody(f, helloFrame(validHello())))
	f.Add([]byte{0x1a, 0x00})
	f.Add([]byte{0x1a, 0x02, 0x08})

	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		r := fr.GetResult()
		if r == nil {
			return
		}
		o, rej := resultOutcome(r)
		switch r.GetOutcome() {
		case pb.Outcome_VERIFIED, pb.Outcome_PENDING:
			if rej != nil || (o != Verified && o != Pending) || int32(o) != int32(r.GetOutcome()) {
				t.Fatalf("%v gave %s, %v", r, o, rej)
			}
		case pb.Outcome_REJECTED:
			if o != Rejected || rej == nil || !rej.Remote || rej.Reason != Reason(r.GetReason()) ||
				rej.RetryAfter != time.Duration(r.GetRetryAfterS())*time.Second {
				t.Fatalf("%v gave %s, %#v", r, o, rej)
			}
		default:
			if o != Rejected || rej == nil || !rej.Remote || rej.Reason != ReasonMalformed {
				t.Fatalf("unknown outcome %v gave %s, %#v", r, o, rej)
			}
		}
		if rej != nil {
			_ = rej.Error()
			_ = rej.Reason.String()
			_ = rej.Reason.Bans()
		}
		n := remoteReject(r)
		if !n.Remote || n.RetryAfter < 0 || len(n.Message) > MaxMessageLen+len("...") {
			t.Fatalf("remoteReject(%v) = %#v", r, n)
		}
	})
}

func FuzzFrameReader(f *testing.F) {
	var all []byte
	for _, fr := range testFrames(f) {
		b, err := encodeFrame(fr)
		require.NoError(f, err)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add(all[:len(all)-3])
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x00, 0x00})
	f.Add(uvarint(MaxFrameSize + 1))
	f.Add(append(uvarint(1<<40), 1, 2, 3))
	f.Add([]byte{0x81, 0x00, 0x01})
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Add(append(uvarint(3), 0x1a, 0x01, 0x08))

	f.Fuzz(func(t *testing.T, b []byte) {
		cr := &countingReader{r: bytes.NewReader(b)}
		fr := newFrameReader(cr)
		for i := 0; i <= len(b); i++ {
			before := cr.n
			f, err := fr.next()
			if err != nil {
				if f != nil {
					t.Fatalf("frame and error: %v, %v", f, err)
				}
				return
			}
			if f == nil || f.Body == nil {
				t.Fatalf("frame %d: no body", i)
			}
			if read := cr.n - before; read > MaxFrameSize+binary.MaxVarintLen64 {
				t.Fatalf("frame %d: %d bytes", i, read)
			}
		}
		t.Fatalf("frameReader did not stop on %d bytes", len(b))
	})
}
