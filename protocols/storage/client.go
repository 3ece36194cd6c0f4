package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

// Opener opens a storage stream to a peer (through the node, which makes
// sure the peer is Verified).
type Opener func(ctx context.Context, p peer.ID) (network.Stream, error)

// Client makes storage requests to peers.
type Client struct {
	open Opener
	cfg  Config
}

// NewClient makes requests over streams from open, bounded by cfg's
// timeouts.
func NewClient(open Opener, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{open: open, cfg: cfg}, nil
}

// Transfer is how a request went.
type Transfer struct {
	// RTT is the time from sending the request to the first byte of the
	// answer (for a put: to the answer, after all data).
	RTT time.Duration
	// Size is the blob's size; Off and Length the range sent (get).
	Size, Off, Length int64
	// Written is how many verified bytes a get wrote: after a failure,
	// the range to ask another holder for starts Written bytes later.
	Written int64
}

// stream opens a stream with its overall deadline tied to ctx.
func (c *Client) stream(ctx context.Context, p peer.ID) (network.Stream, func(), error) {
	str, err := c.open(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	return str, func() { stop() }, nil
}

// Put sends blob id from st to p. It sends the request and the data
// without waiting, and reads the answer meanwhile: a peer that refuses
// (quota, role, bad data) is heard at once and the upload stops.
func (c *Client) Put(ctx context.Context, p peer.ID, st *store.Store, id cid.Cid) (t Transfer, err error) {
	info, err := st.Stat(id)
	if err != nil {
		return Transfer{}, err
	}
	started := time.Now()
	defer func() { observeDone(opPut, sideClient, started, err) }()
	n := store.EncodedLen(info.Size, 0, info.Size)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.transferTimeout(n))
	defer cancel()
	str, done, err := c.stream(ctx, p)
	if err != nil {
		return Transfer{}, err
	}
	defer done()
	start := time.Now()
	until, _ := ctx.Deadline()
	sent := make(chan error, 1)
	go func() {
		// The encoding goes straight to the stream, as a get's does (see
		// Service.get): a write-behind goroutine cost a copy of every
		// byte, 6 % more CPU per put, on cores the receiver needs.
		w := &idleWriter{w: str, str: str, idle: c.cfg.IdleTimeout, until: until}
		err := writeMsg(w, &pb.Request{Body: &pb.Request_Put{Put: &pb.Put{Id: id.Bytes(), Size: uint64(info.Size)}}})
		cw := &countingWriter{w: w}
		if err == nil {
			err = st.WriteEncoded(cw, id, 0, info.Size)
		}
		addBytes(bytesSent, cw.n)
		if err == nil {
			err = str.CloseWrite()
		}
		sent <- err
	}()
	resp, rerr := c.readResponse(str, until)
	t = Transfer{RTT: time.Since(start), Size: info.Size, Length: info.Size}
	if rerr == nil && resp.code == pb.Code_OK {
		werr := <-sent
		_ = str.Close()
		return t, werr
	}
	str.Reset()
	werr := <-sent
	switch {
	case rerr == nil:
		return t, &RemoteError{Code: resp.code, Message: resp.message}
	case werr != nil && !errors.Is(werr, network.ErrReset):
		return t, fmt.Errorf("put %s to %s: %w", id, p, werr)
	}
	return t, fmt.Errorf("put %s to %s: %w", id, p, rerr)
}

// readResponse reads one response, waiting at most until.
func (c *Client) readResponse(str network.Stream, until time.Time) (*response, error) {
	br := bufio.NewReaderSize(&idleReader{r: str, str: str, idle: c.cfg.IdleTimeout, until: until}, 4<<10)
	b, err := readMsg(br)
	if err != nil {
		return nil, err
	}
	return DecodeResponse(b)
}

// request sends a small request and reads its answer, leaving the stream
// positioned on whatever follows the answer.
func (c *Client) request(ctx context.Context, p peer.ID, req *pb.Request) (network.Stream, *bufio.Reader, *response, time.Duration, func(), error) {
	str, done, err := c.stream(ctx, p)
	if err != nil {
		return nil, nil, nil, 0, nil, err
	}
	fail := func(err error) (network.Stream, *bufio.Reader, *response, time.Duration, func(), error) {
		str.Reset()
		done()
		return nil, nil, nil, 0, nil, err
	}
	until := time.Now().Add(c.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	_ = str.SetDeadline(until)
	start := time.Now()
	if err := writeMsg(str, req); err != nil {
		return fail(err)
	}
	if err := str.CloseWrite(); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(&idleReader{r: str, str: str, idle: c.cfg.IdleTimeout, until: until}, bufSize)
	b, err := readMsg(br)
	if err != nil {
		return fail(err)
	}
	rtt := time.Since(start)
	resp, err := DecodeResponse(b)
	if err != nil {
		return fail(err)
	}
	if resp.code != pb.Code_OK {
		return fail(&RemoteError{Code: resp.code, Message: resp.message})
	}
	return str, br, resp, rtt, done, nil
}

// Get fetches bytes [off, off+length) of blob id from p (the whole blob if
// length < 0) and writes them to dst as they verify, chunk group by chunk
// group: a peer sending wrong bytes is caught within the first group that
// differs (ErrBadData), and nothing unverified reaches dst. The Transfer
// says how many bytes were written, also on failure.
func (c *Client) Get(ctx context.Context, p peer.ID, id cid.Cid, off, length int64, dst io.Writer) (Transfer, error) {
	a, err := c.Ask(ctx, p, id, off, length)
	if err != nil {
		return Transfer{RTT: a.RTT()}, err
	}
	return c.Read(ctx, a, dst)
}

// Answer is a get that a peer answered: the range it sends, and the stream
// its encoding follows on. Read it, or Abort it.
type Answer struct {
	asked time.Time // when the request went out
	peer  peer.ID
	id    cid.Cid
	t     Transfer
	str   network.Stream
	br    *bufio.Reader
	done  func()
}

// Peer is who answered.
func (a *Answer) Peer() peer.ID { return a.peer }

// RTT is the time from the request to the answer (0 for a nil answer).
func (a *Answer) RTT() time.Duration {
	if a == nil {
		return 0
	}
	return a.t.RTT
}

// Abort drops an answer that will not be read.
func (a *Answer) Abort() {
	a.str.Reset()
	a.done()
}

// Ask sends a get of bytes [off, off+length) of blob id (the whole blob if
// length < 0) to p and reads its answer, not the data: a client racing
// several holders (hedging) reads only the first that answers. On error the
// answer is nil but for its RTT.
func (c *Client) Ask(ctx context.Context, p peer.ID, id cid.Cid, off, length int64) (*Answer, error) {
	asked := time.Now()
	g := &pb.Get{Id: id.Bytes(), Whole: length < 0}
	if length >= 0 {
		g.Offset, g.Length = uint64(off), uint64(length)
	}
	str, br, resp, rtt, done, err := c.request(ctx, p, &pb.Request{Body: &pb.Request_Get{Get: g}})
	if err != nil {
		observeOp(opGet, sideClient, err)
		return nil, fmt.Errorf("get %s from %s: %w", id, p, err)
	}
	a := &Answer{asked: asked, peer: p, id: id, t: Transfer{RTT: rtt, Size: resp.size, Off: resp.off, Length: resp.length}, str: str, br: br, done: done}
	if length >= 0 && (resp.off != off || resp.length != length) {
		a.Abort()
		err := fmt.Errorf("get %s from %s: %w: sent range %d+%d, asked for %d+%d", id, p, ErrMalformed, resp.off, resp.length, off, length)
		observeOp(opGet, sideClient, err)
		return nil, err
	}
	return a, nil
}

// Read streams an answer's bytes to dst as they verify (see Get).
func (c *Client) Read(ctx context.Context, a *Answer, dst io.Writer) (t Transfer, err error) {
	defer func() { observeDone(opGet, sideClient, a.asked, err) }()
	defer a.done()
	t = a.t
	str, id := a.str, a.id
	n := store.EncodedLen(t.Size, t.Off, t.Length)
	until := time.Now().Add(c.cfg.transferTimeout(n))
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	_ = str.SetDeadline(until)
	lr := &io.LimitedReader{R: &idleReader{r: a.br, str: str, idle: c.cfg.IdleTimeout, until: until}, N: n}
	src := newReadahead(lr)
	cw := &countingWriter{w: dst}
	err = store.DecodeVerified(cw, src, id, t.Size, t.Off, t.Length)
	t.Written = cw.n
	if err != nil {
		str.Reset()
		src.Close()
		addBytes(bytesReceived, n-lr.N)
		return t, fmt.Errorf("get %s from %s: %w", id, a.peer, err)
	}
	_ = str.Close()
	src.Close()
	addBytes(bytesReceived, n-lr.N) // the read-ahead has stopped
	return t, nil
}

// Has asks p which of ids it holds (at most MaxHasIDs), and their sizes:
// sizes[i] is -1 for a blob p does not hold.
func (c *Client) Has(ctx context.Context, p peer.ID, ids []cid.Cid) (sizes []int64, rtt time.Duration, err error) {
	if len(ids) > MaxHasIDs {
		return nil, 0, fmt.Errorf("has of %d blobs: at most %d at once", len(ids), MaxHasIDs)
	}
	started := time.Now()
	defer func() { observeDone(opHas, sideClient, started, err) }()
	h := &pb.Has{Ids: make([][]byte, len(ids))}
	for i, id := range ids {
		h.Ids[i] = id.Bytes()
	}
	str, _, resp, rtt, done, err := c.request(ctx, p, &pb.Request{Body: &pb.Request_Has{Has: h}})
	if err != nil {
		return nil, rtt, fmt.Errorf("has from %s: %w", p, err)
	}
	defer done()
	_ = str.Close()
	if len(resp.have) != len(ids) || len(resp.sizes) != len(ids) {
		return nil, rtt, fmt.Errorf("has from %s: %w: %d answers to %d IDs", p, ErrMalformed, len(resp.have), len(ids))
	}
	sizes = make([]int64, len(ids))
	for i, have := range resp.have {
		sizes[i] = -1
		if have {
			sizes[i] = resp.sizes[i]
		}
	}
	return sizes, rtt, nil
}

// Stat asks p for blob id's size.
func (c *Client) Stat(ctx context.Context, p peer.ID, id cid.Cid) (size int64, rtt time.Duration, err error) {
	started := time.Now()
	defer func() { observeDone(opStat, sideClient, started, err) }()
	str, _, resp, rtt, done, err := c.request(ctx, p, &pb.Request{Body: &pb.Request_Stat{Stat: &pb.Stat{Id: id.Bytes()}}})
	if err != nil {
		return 0, rtt, fmt.Errorf("stat %s on %s: %w", id, p, err)
	}
	defer done()
	_ = str.Close()
	return resp.size, rtt, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}
