package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

// ID is the storage protocol's ID.
const ID = "/peernode/storage/1.0.0"

// Wire limits.
const (
	// MaxHeaderSize caps a request or response message. The largest is a
	// Has of MaxHasIDs CIDs (38 bytes each, plus framing): about 40 KiB.
	MaxHeaderSize = 64 << 10
	// MaxHasIDs caps the IDs of one Has request.
	MaxHasIDs = 1024
	// MaxMessageLen caps a response's explanation.
	MaxMessageLen = 256
	// bufSize is the buffer of a stream's reader and writer: large enough
	// that a transfer runs in few system calls, small enough that many
	// transfers at once stay cheap.
	bufSize = 256 << 10
)

// Errors of message decoding.
var (
	ErrTooLargeHeader = errors.New("storage message too large")
	ErrMalformed      = errors.New("malformed storage message")
)

// op is a request's kind.
type op int

const (
	opPut op = iota + 1
	opGet
	opHas
	opStat
)

func (o op) String() string {
	switch o {
	case opPut:
		return "put"
	case opGet:
		return "get"
	case opHas:
		return "has"
	case opStat:
		return "stat"
	}
	return "unknown"
}

// request is a decoded and checked Request.
type request struct {
	op     op
	id     cid.Cid
	size   int64 // put
	whole  bool  // get
	off    int64 // get
	length int64 // get
	ids    []cid.Cid
}

// DecodeRequest decodes and checks a request: one body, valid blob IDs,
// sizes within int64, at most MaxHasIDs IDs. Errors wrap ErrMalformed.
func DecodeRequest(b []byte) (*request, error) {
	var m pb.Request
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var (
		r   request
		err error
	)
	switch body := m.Body.(type) {
	case *pb.Request_Put:
		r.op = opPut
		if r.id, err = decodeID(body.Put.GetId()); err == nil {
			r.size, err = toInt64("size", body.Put.GetSize())
		}
	case *pb.Request_Get:
		g := body.Get
		r.op, r.whole = opGet, g.GetWhole()
		if r.id, err = decodeID(g.GetId()); err == nil && !r.whole {
			r.off, r.length, err = decodeRange(g.GetOffset(), g.GetLength())
		}
	case *pb.Request_Has:
		r.op = opHas
		ids := body.Has.GetIds()
		if len(ids) > MaxHasIDs {
			return nil, fmt.Errorf("%w: has of %d IDs, at most %d", ErrMalformed, len(ids), MaxHasIDs)
		}
		r.ids = make([]cid.Cid, 0, len(ids))
		for _, b := range ids {
			id, derr := decodeID(b)
			if derr != nil {
				err = derr
				break
			}
			r.ids = append(r.ids, id)
		}
	case *pb.Request_Stat:
		r.op = opStat
		r.id, err = decodeID(body.Stat.GetId())
	default:
		return nil, fmt.Errorf("%w: request without an operation", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeID(b []byte) (cid.Cid, error) {
	id, err := cid.Cast(b)
	if err == nil {
		err = store.CheckID(id)
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: blob ID: %w", ErrMalformed, err)
	}
	return id, nil
}

func toInt64(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s %d out of range", ErrMalformed, what, v)
	}
	return int64(v), nil
}

func decodeRange(off, length uint64) (int64, int64, error) {
	if off > math.MaxInt64 || length > math.MaxInt64-off {
		return 0, 0, fmt.Errorf("%w: range %d+%d out of range", ErrMalformed, off, length)
	}
	return int64(off), int64(length), nil
}

// response is a decoded and checked Response.
type response struct {
	code    pb.Code
	message string
	size    int64
	off     int64
	length  int64
	have    []bool
	sizes   []int64
}

// DecodeResponse decodes and checks a response: a known code, a range
// inside the announced size. Errors wrap ErrMalformed.
func DecodeResponse(b []byte) (*response, error) {
	var m pb.Response
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, ok := pb.Code_name[int32(m.GetCode())]; !ok {
		return nil, fmt.Errorf("%w: unknown code %d", ErrMalformed, m.GetCode())
	}
	r := &response{code: m.GetCode(), message: clip(m.GetMessage(), MaxMessageLen), have: m.GetHave()}
	if len(m.GetSizes()) > MaxHasIDs {
		return nil, fmt.Errorf("%w: %d sizes, at most %d", ErrMalformed, len(m.GetSizes()), MaxHasIDs)
	}
	var err error
	for _, v := range m.GetSizes() {
		size, err := toInt64("blob size", v)
		if err != nil {
			return nil, err
		}
		r.sizes = append(r.sizes, size)
	}
	if r.size, err = toInt64("size", m.GetSize()); err != nil {
		return nil, err
	}
	if r.off, r.length, err = decodeRange(m.GetOffset(), m.GetLength()); err != nil {
		return nil, err
	}
	if r.off+r.length > r.size {
		return nil, fmt.Errorf("%w: range %d+%d beyond the size %d", ErrMalformed, r.off, r.length, r.size)
	}
	return r, nil
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence, and
// replaces invalid UTF-8 (a peer's text goes into logs and errors).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// writeMsg writes m with its varint length prefix in one write.
func writeMsg(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxHeaderSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLargeHeader, len(b))
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// readMsg reads one varint-prefixed message of at most MaxHeaderSize bytes
// from r, which keeps whatever follows it buffered.
func readMsg(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	switch {
	case errors.Is(err, io.EOF):
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, fmt.Errorf("%w: length prefix: %w", ErrMalformed, err)
	case n > MaxHeaderSize:
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLargeHeader, n, MaxHeaderSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
