package handshake

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"

	"peernode/protocols/handshake/pb"
)

var log = logging.Logger("peernode/handshake")

// serviceName is the resource manager's service scope for handshake
// streams.
const serviceName = "peernode.handshake"

// streamMemory is reserved per handshake stream: two frames in flight.
const streamMemory = 2 * MaxFrameSize

// Registry is what the handshake needs from the node's identity registry.
type Registry interface {
	// Begin reserves the peer's single live session for a handshake on c.
	// An error refuses the session: another one for the peer wins.
	Begin(c network.Conn, initiator bool) error
	// Admit vets a peer that proved itself: bans, duplicate processes.
	Admit(c network.Conn, id Identity) *RejectError
	// AdmitsAhead reports, without side effects, whether Admit would let
	// the peer in without a word (so our decision may precede its proof).
	AdmitsAhead(c network.Conn, id Identity) bool
	// Rejecting is told of each rejection we are about to send on c, and
	// may ban the peer and set the rejection's RetryAfter to match.
	Rejecting(c network.Conn, rej *RejectError)
	// Done reports how a session begun with Begin ended; it is called
	// exactly once per successful Begin.
	Done(c network.Conn, r Report)
	// Notice reports a peer's unsolicited rejection (a revocation) on c.
	Notice(c network.Conn, rej *RejectError)
}

// Report is how one handshake session ended.
type Report struct {
	Initiator bool
	// Identity the peer presented; zero if its hello never came or failed.
	Identity Identity
	// Local and Remote are each side's decision; Outcome combines them.
	Local, Remote, Outcome Outcome
	// Err is the *RejectError (ours or the peer's) or the I/O error that
	// ended the session; nil when Outcome is Verified or Pending.
	Err error
	// RTT is one round trip measured during the exchange.
	RTT time.Duration
}

// Service runs handshakes for one host.
type Service struct {
	cfg   Config
	host  host.Host
	reg   Registry
	trust *Trust
}

// New registers the handshake handler on h.
func New(h host.Host, cfg Config, reg Registry, trust *Trust) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, host: h, reg: reg, trust: trust}
	h.SetStreamHandler(ID, s.handle)
	return s, nil
}

// Close unregisters the handler.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(ID)
	return nil
}

// Timeout is the configured handshake timeout.
func (s *Service) Timeout() time.Duration { return s.cfg.Timeout }

// session is one side of one handshake.
type session struct {
	s         *Service
	conn      network.Conn
	str       io.ReadWriter
	fr        *frameReader
	initiator bool
	started   time.Time
	report    Report
	ourHello  []byte
	peerHello []byte
	identity  Identity
	// batch, while set, gathers frames for one write (flush).
	batch *bytes.Buffer
}

// out is where frames go: the batch being gathered, else the stream.
func (ss *session) out() io.Writer {
	if ss.batch != nil {
		return ss.batch
	}
	return ss.str
}

// flush writes the gathered frames at once.
func (ss *session) flush() error {
	if ss.batch == nil {
		return nil
	}
	b := ss.batch.Bytes()
	ss.batch = nil
	_, err := ss.str.Write(b)
	return err
}

// Initiate runs the initiator's side on conn: the dialing side calls it as
// soon as the connection is up. It returns the session's report; the
// registry has been told already.
func (s *Service) Initiate(ctx context.Context, conn network.Conn) Report {
	if err := s.reg.Begin(conn, true); err != nil {
		return Report{Initiator: true, Outcome: Rejected, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ss := &session{s: s, conn: conn, initiator: true, started: time.Now()}
	ss.report.Initiator = true
	str, err := s.openStream(ctx, conn)
	if err == nil {
		stop := context.AfterFunc(ctx, func() { str.Reset() })
		defer stop()
		ss.str, ss.fr = str.rw, newFrameReader(str.rw)
		err = ss.runInitiator()
		ss.end(str, str.rw, err)
	}
	return ss.finish(err)
}

// negotiated is a stream whose protocol negotiation happens lazily with the
// first write, saving a round trip.
type negotiated struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *Service) openStream(ctx context.Context, conn network.Conn) (*negotiated, error) {
	str, err := conn.NewStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open handshake stream: %w", err)
	}
	if err := str.SetProtocol(protocol.ID(ID)); err != nil {
		str.Reset()
		return nil, err
	}
	if err := s.prepare(str); err != nil {
		str.Reset()
		return nil, err
	}
	return &negotiated{Stream: str, rw: msmux.NewMSSelect(str, protocol.ID(ID))}, nil
}

// prepare attaches the stream to the service scope, reserves its memory
// and sets its deadline.
func (s *Service) prepare(str network.Stream) error {
	if err := str.Scope().SetService(serviceName); err != nil {
		return fmt.Errorf("handshake stream scope: %w", err)
	}
	if err := str.Scope().ReserveMemory(streamMemory, network.ReservationPriorityAlways); err != nil {
		return fmt.Errorf("handshake stream memory: %w", err)
	}
	return str.SetDeadline(time.Now().Add(s.cfg.Timeout))
}

// handle runs the responder's side of a handshake stream.
func (s *Service) handle(str network.Stream) {
	if err := s.prepare(str); err != nil {
		log.Debugw("handshake stream refused", "peer", str.Conn().RemotePeer(), "err", err)
		str.Reset()
		return
	}
	ss := &session{s: s, conn: str.Conn(), str: str, fr: newFrameReader(str), started: time.Now()}
	f, err := ss.fr.next()
	if r := f.GetResult(); err == nil && r != nil {
		// Not a handshake: the peer tells us it revoked or rejected us.
		s.reg.Notice(ss.conn, remoteReject(r))
		_ = str.Close()
		return
	}
	if berr := s.reg.Begin(ss.conn, false); berr != nil {
		log.Debugw("handshake refused", "peer", ss.conn.RemotePeer(), "err", berr)
		str.Reset()
		return
	}
	if err != nil {
		if rej := asReject(err); rej != nil {
			ss.sendReject(rej)
			err = rej
		}
	} else {
		err = ss.runResponder(f)
	}
	ss.end(str, str, err)
	ss.finish(err)
}

// lingerTimeout bounds how long a side that sent a rejection waits for the
// peer to read it and hang up, before the connection is closed under it.
const lingerTimeout = time.Second

// end closes the stream: gracefully on success, after letting the peer read
// our rejection, or with a reset on any other failure.
func (ss *session) end(str network.Stream, r io.Reader, err error) {
	var rej *RejectError
	switch {
	case err == nil:
		_ = str.Close()
	case errors.As(err, &rej) && !rej.Remote:
		_ = str.CloseWrite()
		_ = str.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(r, MaxFrameSize))
		_ = str.Close()
	default:
		str.Reset()
	}
}

func (ss *session) hello() (*pb.Hello, error) {
	c := ss.s.cfg
	h := &pb.Hello{
		Magic: Magic, MinVersion: c.MinVersion, MaxVersion: c.MaxVersion,
		NetworkId: c.NetworkID, Name: c.Name, Role: c.Role.wire(), SoftwareVersion: c.Version,
		TimestampMs: c.Now().UnixMilli(), Nonce: make([]byte, NonceSize), Instance: c.Instance,
		Justification: c.Justification,
	}
	if _, err := rand.Read(h.Nonce); err != nil {
		return nil, err
	}
	for i, a := range c.ListenAddrs() {
		if i == MaxAddrs {
			break
		}
		h.ListenAddrs = append(h.ListenAddrs, a.Bytes())
	}
	return h, nil
}

// sendHello writes our hello and keeps its bytes for the transcript.
func (ss *session) sendHello() error {
	h, err := ss.hello()
	if err != nil {
		return err
	}
	b, err := proto.Marshal(h)
	if err != nil {
		return err
	}
	ss.ourHello = b
	frame, err := encodeHelloFrame(b)
	if err != nil {
		return err
	}
	_, err = ss.out().Write(frame)
	return err
}

// checkPeerHello validates the peer's hello, answering a rejection.
func (ss *session) checkPeerHello(h *pb.Hello) error {
	ss.peerHello = ss.fr.hello
	c := ss.s.cfg
	id, rej := CheckHello(Local{NetworkID: c.NetworkID, Now: c.Now(), MaxClockSkew: c.MaxClockSkew}, h)
	if rej != nil {
		ss.sendReject(rej)
		return rej
	}
	ss.identity = id
	ss.report.Identity = id
	return nil
}

func (ss *session) transcript() []byte {
	local, remote := ss.conn.LocalPeer(), ss.conn.RemotePeer()
	if ss.initiator {
		return transcript(ss.s.cfg.NetworkID, local, remote, ss.ourHello, ss.peerHello)
	}
	return transcript(ss.s.cfg.NetworkID, remote, local, ss.peerHello, ss.ourHello)
}

func (ss *session) ourSide() side {
	if ss.initiator {
		return sideInitiator
	}
	return sideResponder
}

func (ss *session) peerSide() side {
	if ss.initiator {
		return sideResponder
	}
	return sideInitiator
}

func (ss *session) sendProof(t []byte) error {
	p, err := makeProof(ss.s.cfg.Key, ss.s.cfg.HandshakeKey, ss.ourSide(), t)
	if err != nil {
		return err
	}
	return writeFrame(ss.out(), proofFrame(p))
}

func (ss *session) checkPeerProof(t []byte, p *pb.Proof) error {
	if rej := checkProof(ss.conn.RemotePublicKey(), ss.s.cfg.HandshakeKey, ss.peerSide(), t, p); rej != nil {
		ss.sendReject(rej)
		return rej
	}
	return nil
}

// decide vets the proven peer with the registry, then the trust policy.
func (ss *session) decide() (Outcome, *RejectError) {
	if rej := ss.s.reg.Admit(ss.conn, ss.identity); rej != nil {
		return Rejected, rej
	}
	if ss.s.trust == nil {
		return Verified, nil
	}
	return ss.s.trust.Evaluate(ss.conn.RemotePeer(), ss.conn.RemotePublicKey(), ss.identity)
}

func (ss *session) sendResult(o Outcome, rej *RejectError) error {
	r := &pb.Result{Outcome: pb.Outcome(o)}
	if rej != nil {
		r.Outcome, r.Reason, r.Message = pb.Outcome_REJECTED, pb.Reason(rej.Reason), clip(rej.Message, MaxMessageLen)
		r.RetryAfterS = uint32(rej.RetryAfter / time.Second)
	}
	return writeFrame(ss.out(), resultFrame(r))
}

func (ss *session) sendReject(rej *RejectError) {
	if rej == nil || rej.Remote {
		return
	}
	ss.s.reg.Rejecting(ss.conn, rej)
	err := ss.sendResult(Rejected, rej)
	if ferr := ss.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		log.Debugw("handshake: could not send the rejection", "peer", ss.conn.RemotePeer(), "err", err)
	}
}

// expect reads the next frame, turning a peer's rejection into a remote
// RejectError and any frame of another kind into a malformed one.
func (ss *session) expect(kind string) (*pb.Frame, error) {
	f, err := ss.fr.next()
	if err != nil {
		return nil, err
	}
	if r := f.GetResult(); r != nil && kind != "result" {
		return nil, remoteReject(r)
	}
	ok := (kind == "hello" && f.GetHello() != nil) || (kind == "proof" && f.GetProof() != nil) || (kind == "result" && f.GetResult() != nil)
	if !ok {
		rej := reject(ReasonMalformed, "expected a %s frame", kind)
		ss.sendReject(rej)
		return nil, rej
	}
	return f, nil
}

func (ss *session) runInitiator() error {
	start := time.Now()
	if err := ss.sendHello(); err != nil {
		return err
	}
	f, err := ss.expect("hello")
	if err != nil {
		return err
	}
	ss.report.RTT = time.Since(start)
	if err := ss.checkPeerHello(f.GetHello()); err != nil {
		return err
	}
	t := ss.transcript()
	// The responder sends its decision ahead of its proof when it can only
	// be Verified (see runResponder): then we are done once our proof and
	// decision are out, a round trip sooner.
	early := false
	if f, err = ss.fr.next(); err != nil {
		return err
	}
	if r := f.GetResult(); r != nil {
		remote, rrej := resultOutcome(r)
		if rrej != nil {
			return rrej
		}
		if remote != Verified {
			rej := reject(ReasonMalformed, "a decision ahead of the proof must be verified")
			ss.sendReject(rej)
			return rej
		}
		ss.report.Remote, early = remote, true
		if f, err = ss.expect("proof"); err != nil {
			return err
		}
	} else if f.GetProof() == nil {
		rej := reject(ReasonMalformed, "expected a proof frame")
		ss.sendReject(rej)
		return rej
	}
	if err := ss.checkPeerProof(t, f.GetProof()); err != nil {
		return err
	}
	local, rej := ss.decide()
	ss.report.Local = local
	if rej != nil {
		ss.sendReject(rej)
		return rej
	}
	ss.batch = new(bytes.Buffer)
	if err := ss.sendProof(t); err != nil {
		return err
	}
	if err := ss.sendResult(local, nil); err != nil {
		return err
	}
	if err := ss.flush(); err != nil {
		return err
	}
	if early {
		return nil
	}
	if f, err = ss.expect("result"); err != nil {
		return err
	}
	remote, rrej := resultOutcome(f.GetResult())
	ss.report.Remote = remote
	return firstReject(rrej)
}

// runResponder answers a hello with our hello and proof in one write. When
// the trust policy can only verify this peer (its key, authenticated by the
// secure channel, is allowed or the policy is open), our decision goes
// along, ahead of the peer's proof: a peer that then fails its proof is
// rejected all the same, and nothing reaches it through the gate before
// its proof checked out. A decision that could be Pending waits for the
// proof, since a pending request is kept only for a proven member.
func (ss *session) runResponder(first *pb.Frame) error {
	h := first.GetHello()
	if h == nil {
		rej := reject(ReasonMalformed, "expected a hello frame")
		ss.sendReject(rej)
		return rej
	}
	if err := ss.checkPeerHello(h); err != nil {
		return err
	}
	ss.batch = new(bytes.Buffer)
	if err := ss.sendHello(); err != nil {
		return err
	}
	t := ss.transcript()
	early := ss.s.reg.AdmitsAhead(ss.conn, ss.identity) && (ss.s.trust == nil || ss.s.trust.Foresee(ss.conn.RemotePeer()))
	if early {
		if err := ss.sendResult(Verified, nil); err != nil {
			return err
		}
	}
	if err := ss.sendProof(t); err != nil {
		return err
	}
	if err := ss.flush(); err != nil {
		return err
	}
	start := time.Now()
	f, err := ss.expect("proof")
	if err != nil {
		return err
	}
	ss.report.RTT = time.Since(start)
	if err := ss.checkPeerProof(t, f.GetProof()); err != nil {
		return err
	}
	if f, err = ss.expect("result"); err != nil {
		return err
	}
	remote, rrej := resultOutcome(f.GetResult())
	ss.report.Remote = remote
	local, rej := ss.decide()
	ss.report.Local = local
	if rej == nil && early && local != Verified {
		// The trust store changed since we told the peer: take it back.
		rej = reject(ReasonTimeout, "the trust decision changed during the handshake: reconnect")
	}
	if rej != nil {
		ss.sendReject(rej)
		return rej
	}
	if !early {
		if err := ss.sendResult(local, nil); err != nil {
			return err
		}
	}
	return firstReject(rrej)
}

// finish completes the report and hands it to the registry.
func (ss *session) finish(err error) Report {
	r := &ss.report
	r.Err = err
	if err != nil {
		r.Outcome = Rejected
		if r.Local == 0 {
			r.Local = Rejected
		}
	} else {
		r.Outcome = Combine(r.Local, r.Remote)
	}
	ss.s.reg.Done(ss.conn, *r)
	observe(*r, ss.started)
	return *r
}

func resultOutcome(r *pb.Result) (Outcome, *RejectError) {
	switch r.GetOutcome() {
	case pb.Outcome_VERIFIED:
		return Verified, nil
	case pb.Outcome_PENDING:
		return Pending, nil
	case pb.Outcome_REJECTED:
		return Rejected, remoteReject(r)
	}
	return Rejected, &RejectError{Reason: ReasonMalformed, Message: "peer sent an unknown outcome", Remote: true}
}

func remoteReject(r *pb.Result) *RejectError {
	return &RejectError{
		Reason:     Reason(r.GetReason()),
		Message:    clip(r.GetMessage(), MaxMessageLen),
		RetryAfter: time.Duration(r.GetRetryAfterS()) * time.Second,
		Remote:     true,
	}
}

func firstReject(errs ...*RejectError) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// asReject turns a frame-reading error into the rejection to send.
func asReject(err error) *RejectError {
	var rej *RejectError
	switch {
	case errors.As(err, &rej):
		return rej
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrMalformed):
		return reject(ReasonMalformed, "%v", err)
	}
	return nil
}

// SendNotice tells the peer on conn that we rejected it (a revocation),
// before the caller closes the connection.
func (s *Service) SendNotice(ctx context.Context, conn network.Conn, rej *RejectError) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	str, err := s.openStream(ctx, conn)
	if err != nil {
		return err
	}
	defer str.Close()
	ss := &session{s: s, conn: conn, str: str.rw}
	if err := ss.sendResult(Rejected, rej); err != nil {
		str.Reset()
		return err
	}
	// Wait for the peer to close its side, so the notice is read before
	// the connection goes.
	_, _ = io.Copy(io.Discard, io.LimitReader(str.rw, 1))
	return nil
}
