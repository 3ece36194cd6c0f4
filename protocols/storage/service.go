package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/network"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

var log = logging.Logger("peernode/storage")

// serviceName is the resource manager service the streams are attached to.
const serviceName = "peernode.storage"

// streamMemory is what a transfer reserves: its reader and writer buffers
// and the store's own.
const streamMemory = 4 * bufSize

// Service serves the storage protocol from a store. Register Handle
// through the node's verified-only gate.
type Service struct {
	ctx    context.Context
	store  *store.Store
	cfg    Config
	slots  chan struct{}
	stored func(store.Info)
}

// NewService serves st. stored, if set, is called after a peer's put is
// stored (the node provides the blob in the DHT). ctx ends every transfer
// in progress when it is cancelled.
func NewService(ctx context.Context, st *store.Store, cfg Config, stored func(store.Info)) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{ctx: ctx, store: st, cfg: cfg, slots: make(chan struct{}, cfg.MaxTransfers), stored: stored}, nil
}

// Handle serves one request stream.
func (s *Service) Handle(str network.Stream) {
	started := time.Now()
	if err := str.Scope().SetService(serviceName); err != nil {
		log.Debugw("storage stream refused", "peer", str.Conn().RemotePeer(), "err", err)
		str.Reset()
		observeOp(0, sideServed, ErrBusy)
		return
	}
	if err := str.Scope().ReserveMemory(streamMemory, network.ReservationPriorityHigh); err != nil {
		log.Debugw("storage stream refused: memory", "peer", str.Conn().RemotePeer(), "err", err)
		str.Reset()
		observeOp(0, sideServed, ErrBusy)
		return
	}
	defer str.Scope().ReleaseMemory(streamMemory)
	_ = str.SetDeadline(time.Now().Add(s.cfg.RequestTimeout))
	br := bufio.NewReaderSize(str, bufSize)
	b, err := readMsg(br)
	var req *request
	if err == nil {
		req, err = DecodeRequest(b)
	}
	if err != nil {
		log.Debugw("bad storage request", "peer", str.Conn().RemotePeer(), "err", err)
		observeOp(0, sideServed, err)
		s.fail(str, err)
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	switch req.op {
	case opPut:
		err = s.put(ctx, str, br, req)
	case opGet:
		err = s.get(str, req)
	case opHas:
		resp := &pb.Response{Have: make([]bool, len(req.ids)), Sizes: make([]uint64, len(req.ids))}
		for i, id := range req.ids {
			if info, serr := s.store.Stat(id); serr == nil {
				resp.Have[i], resp.Sizes[i] = true, uint64(info.Size)
			}
		}
		err = writeMsg(str, resp)
	case opStat:
		var info store.Info
		if info, err = s.store.Stat(req.id); err == nil {
			err = writeMsg(str, &pb.Response{Size: uint64(info.Size)})
		}
	}
	observeDone(req.op, sideServed, started, err)
	if err != nil {
		log.Debugw("storage request failed", "peer", str.Conn().RemotePeer(), "op", req.op, "err", err)
		s.fail(str, err)
		return
	}
	_ = str.Close()
}

// fail answers err's code, when the stream still can, and closes it. The
// client reads the answer while it may still be sending; it resets the
// stream itself.
func (s *Service) fail(str network.Stream, err error) {
	var ne interface{ Timeout() bool }
	if errors.Is(err, network.ErrReset) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && ne.Timeout()) {
		str.Reset()
		return
	}
	code, msg := codeOf(err)
	_ = str.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
	if werr := writeMsg(str, &pb.Response{Code: code, Message: clip(msg, MaxMessageLen)}); werr != nil {
		str.Reset()
		return
	}
	_ = str.Close()
}

// acquire takes a transfer slot, or reports ErrBusy.
func (s *Service) acquire() (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	default:
		return nil, ErrBusy
	}
}

func (s *Service) put(ctx context.Context, str network.Stream, br *bufio.Reader, req *request) error {
	if !s.cfg.AcceptPuts {
		return ErrRefused
	}
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	n := store.EncodedLen(req.size, 0, req.size)
	until := time.Now().Add(s.cfg.transferTimeout(n))
	_ = str.SetDeadline(until)
	lr := &io.LimitedReader{R: &idleReader{r: br, str: str, idle: s.cfg.IdleTimeout, until: until}, N: n}
	src := newReadahead(lr)
	info, err := s.store.Receive(ctx, req.id, req.size, src)
	if err != nil {
		// Stop reading (the read-ahead ends with the read side), and
		// answer on the write side.
		_ = str.CloseRead()
	}
	src.Close()
	addBytes(bytesReceived, n-lr.N) // the read-ahead has stopped
	if err != nil {
		return fmt.Errorf("receive %s (%d bytes): %w", req.id, req.size, err)
	}
	if s.stored != nil {
		s.stored(info)
	}
	return writeMsg(str, &pb.Response{Size: uint64(info.Size)})
}

func (s *Service) get(str network.Stream, req *request) error {
	info, err := s.store.Stat(req.id)
	if err != nil {
		return err
	}
	off, length := req.off, req.length
	if req.whole {
		off, length = 0, info.Size
	}
	if off > info.Size || length > info.Size-off {
		return fmt.Errorf("%w: %d+%d of a blob of %d bytes", store.ErrBadRange, off, length, info.Size)
	}
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	until := time.Now().Add(s.cfg.transferTimeout(store.EncodedLen(info.Size, off, length)))
	_ = str.SetDeadline(until)
	// The encoding goes straight to the stream: WriteEncoded already
	// writes in 256 KiB pieces and the kernel reads the file ahead, so a
	// write-behind goroutine here only added a copy (gets were 5-8 %
	// slower with it).
	w := &idleWriter{w: str, str: str, idle: s.cfg.IdleTimeout, until: until}
	resp := &pb.Response{Size: uint64(info.Size), Offset: uint64(off), Length: uint64(length)}
	err = writeMsg(w, resp)
	cw := &countingWriter{w: w}
	if err == nil {
		err = s.store.WriteEncoded(cw, req.id, off, length)
	}
	addBytes(bytesSent, cw.n)
	if err != nil {
		// The header is out: the client sees a short stream, not a code.
		str.Reset()
		return fmt.Errorf("send %s: %w", req.id, err)
	}
	return nil
}

// idleReader extends the stream's read deadline as data is read, so a
// transfer that keeps moving lives until its overall deadline (until)
// while one that stalls for idle ends early.
type idleReader struct {
	r       io.Reader
	str     network.Stream
	idle    time.Duration
	until   time.Time
	renewed time.Time // when the deadline was last set
}

func (r *idleReader) Read(p []byte) (int, error) {
	if d, ok := renewDeadline(&r.renewed, time.Now(), r.idle, r.until); ok {
		_ = r.str.SetReadDeadline(d)
	}
	n, err := r.r.Read(p)
	return n, stallError(err)
}

// idleWriter is idleReader's twin for writes.
type idleWriter struct {
	w       io.Writer
	str     network.Stream
	idle    time.Duration
	until   time.Time
	renewed time.Time
}

func (w *idleWriter) Write(p []byte) (int, error) {
	if d, ok := renewDeadline(&w.renewed, time.Now(), w.idle, w.until); ok {
		_ = w.str.SetWriteDeadline(d)
	}
	n, err := w.w.Write(p)
	return n, stallError(err)
}

// renewals is how many times per idle period a deadline is renewed at
// most. Each renewal arms a new timer in the muxer, and a 256 MiB get
// reads thousands of times: renewing on every read cost about 3 % of its
// CPU.
// A stall is then caught after between (1-1/renewals)·idle and idle.
const renewals = 16

// renewDeadline returns the deadline to set at now, idle ahead but not
// past until, unless the one set at *renewed is recent enough (false).
func renewDeadline(renewed *time.Time, now time.Time, idle time.Duration, until time.Time) (time.Time, bool) {
	if !renewed.IsZero() && now.Sub(*renewed) < idle/renewals {
		return time.Time{}, false
	}
	*renewed = now
	if d := now.Add(idle); d.Before(until) {
		return d, true
	}
	return until, true
}

func stallError(err error) error {
	var ne interface{ Timeout() bool }
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrStalled, err)
	}
	return err
}
