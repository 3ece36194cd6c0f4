package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/protocols/handshake"
)

// Status of a remote node in the identity registry.
type Status int

// Statuses. A node is Verified only while it has an open connection on
// which a handshake succeeded.
const (
	StatusNew Status = iota
	StatusHandshaking
	StatusPending
	StatusVerified
	StatusClosing
	StatusError
	StatusDisconnected
)

var statusNames = [...]string{"new", "handshaking", "pending", "verified", "closing", "error", "disconnected"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status_%d", int(s))
}

// EventKind says what happened to a node.
type EventKind string

// Event kinds.
const (
	EventVerified     EventKind = "verified"
	EventPending      EventKind = "pending"
	EventRejected     EventKind = "rejected"
	EventDisconnected EventKind = "disconnected"
	EventRevoked      EventKind = "revoked"
	EventViolation    EventKind = "violation"
)

// EvtPeer is emitted on the host's event bus when a node's standing
// changes: subscribe with host.EventBus().Subscribe(new(node.EvtPeer)).
type EvtPeer struct {
	Peer   peer.ID
	Kind   EventKind
	Status Status
	// Reason is the rejection reason, for EventRejected.
	Reason string
}

// Failure is the last thing that went wrong with a node.
type Failure struct {
	Reason  string
	Message string
	At      time.Time
}

// PeerInfo is a snapshot of one node's registry entry.
type PeerInfo struct {
	ID           peer.ID
	Status       Status
	Identity     handshake.Identity
	HasIdentity  bool
	Conns        []network.Conn
	VerifiedAt   time.Time
	HandshakeRTT time.Duration
	LastFailure  *Failure
}

// Errors of Send and OpenStream.
var (
	// ErrNotVerified: the node is connected but not Verified (pending,
	// rejected), or did not become Verified before the deadline.
	ErrNotVerified = errors.New("node is not verified")
	// ErrUnreachable: the node could not be dialled.
	ErrUnreachable = errors.New("node is unreachable")
	// errSessionLost refuses a handshake that lost the tie-break against
	// another live session for the same node.
	errSessionLost = errors.New("another handshake session for this node wins")
)

type connState struct {
	// settled: a handshake finished on this connection (verified or
	// pending); verified: it succeeded.
	settled, verified bool
	instance          string
	timer             *time.Timer
}

type session struct {
	conn      network.Conn
	initiator bool
}

type peerRecord struct {
	status      Status
	identity    handshake.Identity
	hasIdentity bool
	conns       map[network.Conn]*connState
	verifiedAt  time.Time
	rtt         time.Duration
	lastFailure *Failure
	session     *session
	violations  []time.Time
	// changed is closed and replaced on every status change.
	changed chan struct{}
}

// registry is the single source of truth for every remote node. It
// implements handshake.Registry. One mutex guards all its state; it never
// does I/O or sends on a channel while holding it: closing connections and
// emitting events happen after unlock.
type registry struct {
	self    peer.ID
	cfg     *Config
	gater   *gater
	emitter event.Emitter
	// closeConn closes a connection off the caller's goroutine.
	closeConn func(network.Conn)
	now       func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*peerRecord
}

func newRegistry(self peer.ID, cfg *Config, g *gater, em event.Emitter, closeConn func(network.Conn)) *registry {
	return &registry{self: self, cfg: cfg, gater: g, emitter: em, closeConn: closeConn, now: time.Now, peers: map[peer.ID]*peerRecord{}}
}

// after collects what to do once the lock is released.
type after struct {
	events []EvtPeer
	close  []network.Conn
}

func (a *after) run(r *registry) {
	for _, c := range a.close {
		r.closeConn(c)
	}
	for _, e := range a.events {
		if err := r.emitter.Emit(e); err != nil {
			log.Debugw("emit peer event", "err", err)
		}
	}
}

func (r *registry) record(p peer.ID) *peerRecord {
	rec := r.peers[p]
	if rec == nil {
		rec = &peerRecord{conns: map[network.Conn]*connState{}, changed: make(chan struct{})}
		r.peers[p] = rec
	}
	return rec
}

func (r *registry) setStatus(rec *peerRecord, s Status) {
	if rec.status == s {
		return
	}
	rec.status = s
	close(rec.changed)
	rec.changed = make(chan struct{})
}

// touch wakes those waiting on rec.changed without a status change: a
// connection's handshake settled while the node's status stayed the same.
func (r *registry) touch(rec *peerRecord) {
	close(rec.changed)
	rec.changed = make(chan struct{})
}

// connected registers a new connection. On an inbound one the listening
// side starts the handshake clock.
func (r *registry) connected(c network.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(c.RemotePeer())
	cs := &connState{}
	rec.conns[c] = cs
	if rec.status != StatusVerified && rec.status != StatusPending {
		r.setStatus(rec, StatusNew)
	}
	if c.Stat().Direction == network.DirInbound {
		cs.timer = time.AfterFunc(r.cfg.HandshakeTimeout, func() { r.handshakeTimedOut(c) })
	}
}

// handshakeTimedOut closes an inbound connection whose handshake did not
// finish in time.
func (r *registry) handshakeTimedOut(c network.Conn) {
	r.mu.Lock()
	rec := r.peers[c.RemotePeer()]
	cs := rec.connState(c)
	if cs == nil || cs.settled {
		r.mu.Unlock()
		return
	}
	rec.lastFailure = &Failure{Reason: "timeout", Message: "no handshake within " + r.cfg.HandshakeTimeout.String(), At: r.now()}
	r.mu.Unlock()
	log.Debugw("closing a connection without a handshake", "peer", c.RemotePeer(), "dur", r.cfg.HandshakeTimeout)
	r.closeConn(c)
}

func (rec *peerRecord) connState(c network.Conn) *connState {
	if rec == nil {
		return nil
	}
	return rec.conns[c]
}

// disconnected forgets a closed connection; a node stays Verified only
// while a verified connection remains.
func (r *registry) disconnected(c network.Conn) {
	var a after
	r.mu.Lock()
	p := c.RemotePeer()
	rec := r.peers[p]
	if cs := rec.connState(c); cs != nil {
		if cs.timer != nil {
			cs.timer.Stop()
		}
		delete(rec.conns, c)
		if !rec.anyVerified() && rec.status == StatusVerified {
			r.setStatus(rec, StatusNew)
		}
		if len(rec.conns) == 0 {
			r.setStatus(rec, StatusDisconnected)
			a.events = append(a.events, EvtPeer{Peer: p, Kind: EventDisconnected, Status: StatusDisconnected})
		}
	}
	r.mu.Unlock()
	a.run(r)
}

func (rec *peerRecord) anyVerified() bool {
	for _, cs := range rec.conns {
		if cs.verified {
			return true
		}
	}
	return false
}

// initiatorOf names the node that started a session.
func (r *registry) initiatorOf(s *session) peer.ID {
	if s.initiator {
		return r.self
	}
	return s.conn.RemotePeer()
}

// Begin admits one live session per node. When both nodes dial each other
// at once, the session started by the smaller peer ID wins on both sides,
// and the losing connection is closed.
func (r *registry) Begin(c network.Conn, initiator bool) error {
	var a after
	defer a.run(r)
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(c.RemotePeer())
	if rec.conns[c] == nil {
		if c.IsClosed() {
			return errors.New("connection already closed")
		}
		rec.conns[c] = &connState{}
	}
	s := &session{conn: c, initiator: initiator}
	if old := rec.session; old != nil && old.conn.IsClosed() {
		// Its connection is gone; its Done is on the way. It cannot win.
		rec.session = nil
	}
	if old := rec.session; old != nil && old.conn != c {
		oldSettled := rec.conns[old.conn] != nil && rec.conns[old.conn].settled
		if oldSettled || r.initiatorOf(old) <= r.initiatorOf(s) {
			if !rec.conns[c].settled {
				a.close = append(a.close, c)
			}
			return errSessionLost
		}
		a.close = append(a.close, old.conn)
	} else if old != nil {
		return errors.New("a handshake is already running on this connection")
	}
	rec.session = s
	if rec.status != StatusVerified {
		r.setStatus(rec, StatusHandshaking)
	}
	return nil
}

// Admit refuses banned nodes and applies the duplicate policy to a second
// process presenting the same node key.
func (r *registry) Admit(c network.Conn, id handshake.Identity) *handshake.RejectError {
	p := c.RemotePeer()
	if b, left := r.gater.banned(p); b {
		return &handshake.RejectError{Reason: handshake.ReasonBanned, Message: "this node is banned", RetryAfter: left}
	}
	var a after
	defer a.run(r)
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(p)
	var others []network.Conn
	for oc, cs := range rec.conns {
		if oc != c && cs.settled && cs.instance != "" && cs.instance != id.Instance {
			others = append(others, oc)
		}
	}
	if len(others) == 0 {
		return nil
	}
	log.Warnw("two processes present the same node key (a cloned data directory?)", "peer", p, "policy", r.cfg.DuplicatePolicy)
	if r.cfg.DuplicatePolicy == DuplicateStrict {
		return &handshake.RejectError{Reason: handshake.ReasonDuplicate, Message: "another process with this node key is connected", RetryAfter: 30 * time.Second}
	}
	a.close = append(a.close, others...)
	return nil
}

// AdmitsAhead reports whether Admit would let the peer on c in without a
// word, before its proof: not banned, and no other process presenting its
// key. The handshake then sends our decision ahead of the peer's proof.
func (r *registry) AdmitsAhead(c network.Conn, id handshake.Identity) bool {
	p := c.RemotePeer()
	if b, _ := r.gater.banned(p); b {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.peers[p]
	if rec == nil {
		return true
	}
	for oc, cs := range rec.conns {
		if oc != c && cs.settled && cs.instance != "" && cs.instance != id.Instance {
			return false
		}
	}
	return true
}

// Rejecting bans a peer whose rejection would only repeat (wrong network,
// not allowed, banned), before the rejection goes out, so it carries the
// ban's length as its retry-after hint.
func (r *registry) Rejecting(c network.Conn, rej *handshake.RejectError) {
	if !rej.Reason.Bans() {
		return
	}
	d := r.gater.ban(c.RemotePeer())
	if left := d; left > rej.RetryAfter {
		rej.RetryAfter = left
	}
	log.Infow("banned a node after rejecting its handshake", "peer", c.RemotePeer(), "reason", rej.Reason, "dur", d)
}

// Done records how a session ended.
func (r *registry) Done(c network.Conn, rep handshake.Report) {
	var a after
	r.mu.Lock()
	p := c.RemotePeer()
	rec := r.record(p)
	if rec.session != nil && rec.session.conn == c {
		rec.session = nil
	}
	cs := rec.conns[c]
	now := r.now()
	switch rep.Outcome {
	case handshake.Verified, handshake.Pending:
		rec.identity, rec.hasIdentity, rec.rtt = rep.Identity, true, rep.RTT
		if cs != nil {
			cs.settled, cs.instance = true, rep.Identity.Instance
			cs.verified = rep.Outcome == handshake.Verified
			if cs.timer != nil {
				cs.timer.Stop()
			}
		}
		if rep.Outcome == handshake.Verified && cs != nil {
			a.close = append(a.close, r.crossedLocked(rec, c, cs)...)
			rec.verifiedAt = now
			if rec.status != StatusVerified {
				a.events = append(a.events, EvtPeer{Peer: p, Kind: EventVerified, Status: StatusVerified})
			}
			r.setStatus(rec, StatusVerified)
		} else if rep.Outcome == handshake.Pending && !rec.anyVerified() {
			r.setStatus(rec, StatusPending)
			a.events = append(a.events, EvtPeer{Peer: p, Kind: EventPending, Status: StatusPending})
		}
	default:
		if rec.session != nil && !rec.session.conn.IsClosed() {
			// Another session took over (crossed dials: Begin closed this
			// connection in its favour). This one's failure is that
			// hand-over, not the node's: its status follows the live
			// session.
			a.close = append(a.close, c)
			log.Debugw("handshake superseded by another session", "peer", p, "err", rep.Err)
			break
		}
		if rep.Identity.Instance != "" {
			// A peer refused after a valid hello is still worth showing:
			// the operator sees who it was and why it was refused.
			rec.identity, rec.hasIdentity = rep.Identity, true
		}
		r.failedLocked(rec, p, c, rep.Err, now, &a)
	}
	r.touch(rec)
	r.mu.Unlock()
	a.run(r)
}

// crossedLocked settles crossed dials: when c is verified while a
// connection in the other direction to the same process is verified too,
// both nodes keep the one dialled by the smaller peer ID and close the
// other, so they end with one connection.
func (r *registry) crossedLocked(rec *peerRecord, c network.Conn, cs *connState) []network.Conn {
	dialer := func(x network.Conn) peer.ID {
		if x.Stat().Direction == network.DirOutbound {
			return r.self
		}
		return x.RemotePeer()
	}
	var closing []network.Conn
	for oc, ocs := range rec.conns {
		if oc == c || !ocs.verified || ocs.instance != cs.instance || oc.Stat().Direction == c.Stat().Direction {
			continue
		}
		loser, lcs := c, cs
		if dialer(oc) > dialer(c) {
			loser, lcs = oc, ocs
		}
		// Nothing more goes over the loser: OpenStream and the gate use
		// verified connections only.
		lcs.verified = false
		closing = append(closing, loser)
	}
	return closing
}

// failedLocked records a failed or rejected session, bans when the
// rejection would only repeat, and closes the connection.
func (r *registry) failedLocked(rec *peerRecord, p peer.ID, c network.Conn, err error, now time.Time, a *after) {
	if errors.Is(err, errSessionLost) {
		return
	}
	f := &Failure{Reason: "error", At: now}
	if err != nil {
		f.Message = err.Error()
	}
	var rej *handshake.RejectError
	if errors.As(err, &rej) {
		f.Reason = rej.Reason.String()
		if rej.Remote && rej.RetryAfter > 0 {
			r.gater.hold(p, rej.RetryAfter)
		}
	}
	rec.lastFailure = f
	if !rec.anyVerified() && rec.status != StatusPending {
		r.setStatus(rec, StatusError)
	}
	a.events = append(a.events, EvtPeer{Peer: p, Kind: EventRejected, Status: rec.status, Reason: f.Reason})
	a.close = append(a.close, c)
	log.Debugw("handshake failed", "peer", p, "err", err)
}

// Notice records that the peer revoked or rejected us, and hangs up.
func (r *registry) Notice(c network.Conn, rej *handshake.RejectError) {
	var a after
	r.mu.Lock()
	p := c.RemotePeer()
	rec := r.record(p)
	for oc, cs := range rec.conns {
		cs.verified, cs.settled = false, true
		a.close = append(a.close, oc)
	}
	r.failedLocked(rec, p, c, rej, r.now(), &a)
	r.setStatus(rec, StatusClosing)
	r.mu.Unlock()
	log.Infow("a node revoked or rejected us", "peer", p, "reason", rej.Reason, "err", rej.Message)
	a.run(r)
}

// violation counts a protocol violation (a stream before verification);
// past MaxViolations in ViolationWindow the node is disconnected and banned.
func (r *registry) violation(p peer.ID) {
	var a after
	r.mu.Lock()
	rec := r.record(p)
	now := r.now()
	keep := rec.violations[:0]
	for _, t := range rec.violations {
		if now.Sub(t) < r.cfg.ViolationWindow {
			keep = append(keep, t)
		}
	}
	rec.violations = append(keep, now)
	violationsTotal.Inc()
	a.events = append(a.events, EvtPeer{Peer: p, Kind: EventViolation, Status: rec.status})
	if len(rec.violations) > r.cfg.MaxViolations {
		d := r.gater.ban(p)
		rec.violations = nil
		rec.lastFailure = &Failure{Reason: "banned", Message: fmt.Sprintf("more than %d violations in %s", r.cfg.MaxViolations, r.cfg.ViolationWindow), At: now}
		r.setStatus(rec, StatusClosing)
		for c := range rec.conns {
			a.close = append(a.close, c)
		}
		log.Infow("banned a node for repeated violations", "peer", p, "dur", d)
	}
	r.mu.Unlock()
	a.run(r)
}

// isVerified is the gate's check.
func (r *registry) isVerified(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.peers[p]
	return rec != nil && rec.status == StatusVerified
}

// verifiedConn returns a live connection to p on which a handshake
// verified it, or nil and the channel closed on p's next status change.
// (Crossed dials leave one such connection: the loser stops counting as
// verified, see crossedLocked.)
func (r *registry) verifiedConn(p peer.ID) (network.Conn, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(p)
	for c, cs := range rec.conns {
		if cs.verified && !c.IsClosed() {
			return c, nil
		}
	}
	return nil, rec.changed
}

// connHandshaking is the gate's check of a stream's connection c: whether
// a handshake verified the node on c, whether a handshake session is live
// on c, and the channel closed on the node's next change.
func (r *registry) connHandshaking(c network.Conn) (verified, inFlight bool, changed <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.peers[c.RemotePeer()]
	if rec == nil {
		return false, false, nil
	}
	if cs := rec.conns[c]; cs != nil && cs.verified && rec.status == StatusVerified {
		return true, false, nil
	}
	return false, rec.session != nil && rec.session.conn == c, rec.changed
}

// standing returns p's status, whether it is connected, and the channel
// closed on its next change.
func (r *registry) standing(p peer.ID) (Status, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(p)
	return rec.status, len(rec.conns) > 0, rec.changed
}

// waitVerified waits until p is Verified, failing at once when p is
// connected but settled on anything else.
func (r *registry) waitVerified(ctx context.Context, p peer.ID) error {
	for {
		st, connected, changed := r.standing(p)
		switch {
		case st == StatusVerified:
			return nil
		case connected && (st == StatusPending || st == StatusError || st == StatusClosing):
			return fmt.Errorf("%w: %s is %s", ErrNotVerified, p, st)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s is %s at the deadline", ErrNotVerified, p, st)
		}
	}
}

// markClosing sets p Closing (revocation) and returns its connections.
func (r *registry) markClosing(p peer.ID, failure *Failure) []network.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(p)
	var conns []network.Conn
	for c, cs := range rec.conns {
		cs.verified = false
		conns = append(conns, c)
	}
	if failure != nil {
		rec.lastFailure = failure
	}
	if len(conns) > 0 {
		r.setStatus(rec, StatusClosing)
	}
	return conns
}

// info returns p's entry.
func (r *registry) info(p peer.ID) (PeerInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.peers[p]
	if rec == nil {
		return PeerInfo{}, false
	}
	return rec.snapshot(p), true
}

func (rec *peerRecord) snapshot(p peer.ID) PeerInfo {
	pi := PeerInfo{ID: p, Status: rec.status, Identity: rec.identity, HasIdentity: rec.hasIdentity,
		VerifiedAt: rec.verifiedAt, HandshakeRTT: rec.rtt, LastFailure: rec.lastFailure}
	for c := range rec.conns {
		pi.Conns = append(pi.Conns, c)
	}
	return pi
}

// all returns every known node, by ID.
func (r *registry) all() []PeerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PeerInfo, 0, len(r.peers))
	for p, rec := range r.peers {
		out = append(out, rec.snapshot(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
