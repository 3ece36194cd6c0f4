package handshake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-msgio"
	"github.com/multiformats/go-varint"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"peernode/protocols/handshake/pb"
)

// ID is the handshake's protocol ID.
const ID = "/peernode/handshake/1.0.0"

// MaxFrameSize caps one frame. A hello with 32 addresses of 64 bytes and
// every text field full is under 3 KiB; 8 KiB leaves room and stops a peer
// from making us buffer more.
const MaxFrameSize = 8 << 10

// Errors of frame decoding. A frame that fails any check is rejected as
// malformed.
var (
	ErrFrameTooLarge = errors.New("handshake frame too large")
	ErrMalformed     = errors.New("malformed handshake frame")
)

// frameReader reads length-prefixed frames without reading past the
// current one.
type frameReader struct {
	r msgio.ReadCloser
	// hello holds the hello of the last frame read, as its sender encoded
	// it: the transcript binds those bytes, not a re-encoding, which
	// another implementation might order differently.
	hello []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: msgio.NewVarintReaderSize(r, MaxFrameSize)}
}

// next reads and decodes one frame.
func (fr *frameReader) next() (*pb.Frame, error) {
	b, err := fr.r.ReadMsg()
	if err != nil {
		switch {
		case errors.Is(err, msgio.ErrMsgTooLarge):
			return nil, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, MaxFrameSize)
		case errors.Is(err, varint.ErrNotMinimal), errors.Is(err, varint.ErrOverflow):
			return nil, fmt.Errorf("%w: bad length prefix: %w", ErrMalformed, err)
		}
		return nil, err
	}
	defer fr.r.ReleaseMsg(b)
	f, err := DecodeFrame(b)
	fr.hello = nil
	if err == nil && f.GetHello() != nil {
		fr.hello = rawField(b, helloField)
	}
	return f, err
}

// helloField is Frame.hello's field number.
const helloField = 1

// rawField returns a copy of the last occurrence of length-delimited field
// num in a valid protobuf message (the one a decoder keeps).
func rawField(msg []byte, num protowire.Number) []byte {
	var out []byte
	for len(msg) > 0 {
		n, typ, k := protowire.ConsumeTag(msg)
		if k < 0 {
			return out
		}
		msg = msg[k:]
		if typ == protowire.BytesType && n == num {
			v, k := protowire.ConsumeBytes(msg)
			if k < 0 {
				return out
			}
			out = append([]byte(nil), v...)
			msg = msg[k:]
			continue
		}
		k = protowire.ConsumeFieldValue(n, typ, msg)
		if k < 0 {
			return out
		}
		msg = msg[k:]
	}
	return out
}

// encodeHelloFrame frames an encoded hello so that the bytes on the wire
// are exactly hello, the bytes our transcript binds.
func encodeHelloFrame(hello []byte) ([]byte, error) {
	body := protowire.AppendBytes(protowire.AppendTag(nil, helloField, protowire.BytesType), hello)
	if len(body) > MaxFrameSize {
		return nil, fmt.Errorf("%w: ours is %d bytes", ErrFrameTooLarge, len(body))
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...), nil
}

// DecodeFrame decodes one frame's bytes (without the length prefix). It
// checks only the encoding and that exactly one body is set; the hello's
// contents are checked by CheckHello.
func DecodeFrame(b []byte) (*pb.Frame, error) {
	if len(b) > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	f := new(pb.Frame)
	if err := proto.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if f.Body == nil {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	return f, nil
}

// encodeFrame returns the frame with its varint length prefix, ready for a
// single write.
func encodeFrame(f *pb.Frame) ([]byte, error) {
	size := proto.Size(f)
	if size > MaxFrameSize {
		return nil, fmt.Errorf("%w: ours is %d bytes", ErrFrameTooLarge, size)
	}
	buf := make([]byte, binary.MaxVarintLen64, binary.MaxVarintLen64+size)
	n := binary.PutUvarint(buf, uint64(size))
	buf = buf[:n]
	return proto.MarshalOptions{}.MarshalAppend(buf, f)
}

func writeFrame(w io.Writer, f *pb.Frame) error {
	b, err := encodeFrame(f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func helloFrame(h *pb.Hello) *pb.Frame   { return &pb.Frame{Body: &pb.Frame_Hello{Hello: h}} }
func proofFrame(p *pb.Proof) *pb.Frame   { return &pb.Frame{Body: &pb.Frame_Proof{Proof: p}} }
func resultFrame(r *pb.Result) *pb.Frame { return &pb.Frame{Body: &pb.Frame_Result{Result: r}} }
