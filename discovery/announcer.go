package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultAnnounceInterval is how often a node announces itself.
const DefaultAnnounceInterval = 30 * time.Second

// Topic is the network's announcement topic.
func Topic(networkID string) string { return "/peernode/" + networkID + "/announce/1.0.0" }

// AnnouncerConfig configures an Announcer.
type AnnouncerConfig struct {
	// Key is the node key: it signs our announcements.
	Key       crypto.PrivKey
	NetworkID string
	// Interval between our announcements, jittered ±10 %.
	Interval time.Duration
	// Self returns what we announce (name, role, addresses, blob figures,
	// version); NodeID, Seq, Time and Leaving are filled in.
	Self func() Announcement
	// Table receives every accepted announcement.
	Table *Table
	// IsVerified admits a peer to the topic: only Verified nodes exchange
	// announcements and gossip with us.
	IsVerified func(peer.ID) bool
	// Discovery, if set, lets pubsub advertise the topic and find more
	// members when it has too few (Rendezvous.TopicDiscovery).
	Discovery discovery.Discovery
	// AppScore, if set, is GossipSub's application-specific score of a
	// peer: the node's own peer score in [0, 1]. It enters pubsub's score
	// as AppScoreWeight·(score − 0.5): a good peer gains up to +5, a bad
	// one loses up to −5, well short of the gossip threshold (−10), so it
	// steers mesh choices without cutting anyone off on its own.
	AppScore func(peer.ID) float64
	// Rejected, if set, hears of every peer that forwarded us an
	// announcement the validator rejected (for scoring).
	Rejected func(from peer.ID, reason string)
	// Farewell, if set, is called on Close with our signed leaving
	// announcement, while it travels the topic: it hands it to each
	// connected member directly (LeaveProtocol) and returns when they
	// acknowledged or ctx ended.
	Farewell func(ctx context.Context, signed []byte)
}

// Queue sizes of GossipSub, above its defaults (32 each): announcements
// arrive in bursts (a node joining learns every member at once, a restart
// of many nodes announces together), and a full queue drops messages
// (validation) or RPCs (a peer's outbound queue) rather than wait. A slot
// holds one message of at most 8 KiB, so the cost is bounded: 256 slots of
// validation, 128 per peer.
const (
	validateQueueSize = 256
	outboundQueueSize = 128
)

// AppScoreWeight scales the node's peer score into GossipSub's
// application-specific score.
const AppScoreWeight = 10

// Announcer publishes our signed announcements on the network's GossipSub
// topic and feeds the member table with everyone else's.
type Announcer struct {
	cfg    AnnouncerConfig
	self   peer.ID
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// stopLoop ends the announce loop and loopDone closes when it has:
	// Close stops it before the leaving announcement, which must be our
	// last.
	stopLoop context.CancelFunc
	loopDone chan struct{}

	seqMu sync.Mutex
	seq   uint64
	// latest is our last signed announcement, for peer exchange.
	latest []byte
	// kept is how many of our addresses the last announcement carried,
	// to warn once when they stop fitting.
	kept int

	// Rejected counts announcements the validator rejected, for tests and
	// metrics.
	rejected counter
	traffic  trafficTracer
	scores   scoreBoard
	// leaveSent signals each peer the leaving announcement is handed to.
	leaveSent <-chan struct{}
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// verifiedOnly is pubsub's blacklist: a peer connected to us that is not
// Verified counts as blacklisted, so pubsub opens no stream to it, keeps no
// state for it, sends it no message and no gossip (IHAVE), and drops
// anything it forwards. pubsub's peer filter alone would still send IHAVE
// gossip to unverified subscribers.
//
// pubsub also asks the blacklist about the author of every message, even one
// forwarded by a good peer. A member we are not connected to is verified by
// the peers that forward its announcements (they admit only Verified peers)
// and its payload signature is checked by the validator, so only a
// connected, unverified author is refused: otherwise announcements would not
// travel beyond one hop.
type verifiedOnly struct {
	isVerified  func(peer.ID) bool
	isConnected func(peer.ID) bool
	mu          sync.Mutex
	explicit    map[peer.ID]struct{}
}

func (b *verifiedOnly) Add(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.explicit[p] = struct{}{}
	return true
}

func (b *verifiedOnly) Contains(p peer.ID) bool {
	b.mu.Lock()
	_, banned := b.explicit[p]
	b.mu.Unlock()
	return banned || (b.isConnected(p) && !b.isVerified(p))
}

// scoreParams are GossipSub's peer-scoring parameters for the announcement
// topic. Invalid messages cost a sender dearly (weight -100, decaying by 10 %
// per second); first deliveries earn a little. IP colocation is off: a
// cluster on one machine shares 127.0.0.1, and membership is already
// proven by the handshake.
func scoreParams(topic string, app func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	p := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{topic: {
			TopicWeight:                    1,
			TimeInMeshWeight:               0.01,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  100,
			FirstMessageDeliveriesWeight:   1,
			FirstMessageDeliveriesDecay:    0.5,
			FirstMessageDeliveriesCap:      10,
			InvalidMessageDeliveriesWeight: -100,
			InvalidMessageDeliveriesDecay:  0.9,
		}},
		AppSpecificScore:         func(peer.ID) float64 { return 0 },
		AppSpecificWeight:        AppScoreWeight,
		IPColocationFactorWeight: 0,
		BehaviourPenaltyWeight:   -1,
		BehaviourPenaltyDecay:    0.9,
		DecayInterval:            time.Second,
		DecayToZero:              0.01,
		RetainScore:              10 * time.Minute,
	}
	if app != nil {
		p.AppSpecificScore = func(id peer.ID) float64 { return app(id) - 0.5 }
	}
	t := &pubsub.PeerScoreThresholds{GossipThreshold: -10, PublishThreshold: -50, GraylistThreshold: -80}
	return p, t
}

// NewAnnouncer starts GossipSub on h and joins the announcement topic.
// Start begins announcing.
func NewAnnouncer(h host.Host, cfg AnnouncerConfig) (*Announcer, error) {
	if cfg.Key == nil || cfg.NetworkID == "" || cfg.Interval <= 0 || cfg.Self == nil || cfg.Table == nil || cfg.IsVerified == nil {
		return nil, errors.New("announcer: key, network, interval, self, table and verification check are required")
	}
	topicName := Topic(cfg.NetworkID)
	params, thresholds := scoreParams(topicName, cfg.AppScore)
	ctx, cancel := context.WithCancel(context.Background())
	a := &Announcer{cfg: cfg, self: h.ID(), ctx: ctx, cancel: cancel, seq: uint64(time.Now().UnixNano())}
	opts := []pubsub.Option{
		pubsub.WithBlacklist(&verifiedOnly{
			isVerified:  cfg.IsVerified,
			isConnected: func(p peer.ID) bool { return h.Network().Connectedness(p) == network.Connected },
			explicit:    map[peer.ID]struct{}{},
		}),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return cfg.IsVerified(p) }),
		pubsub.WithFloodPublish(false),
		pubsub.WithPeerExchange(false),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithMaxMessageSize(2 * MaxAnnouncementSize),
		pubsub.WithValidateQueueSize(validateQueueSize),
		pubsub.WithPeerOutboundQueueSize(outboundQueueSize),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(a.scores.set), scoreInspectPeriod),
		pubsub.WithRawTracer(&a.traffic),
	}
	if cfg.Discovery != nil {
		opts = append(opts, pubsub.WithDiscovery(cfg.Discovery))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	a.ps = ps
	if err := ps.RegisterTopicValidator(topicName, a.validate); err != nil {
		cancel()
		return nil, err
	}
	if a.topic, err = ps.Join(topicName); err != nil {
		cancel()
		return nil, err
	}
	if a.sub, err = a.topic.Subscribe(); err != nil {
		cancel()
		return nil, err
	}
	return a, nil
}

// validate is the topic validator: Validate's verdict, as pubsub's.
func (a *Announcer) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	ann, err := Validate(msg.GetData(), msg.GetFrom(), time.Now(), a.cfg.Table.LastSeq)
	// pubsub validates our own messages too: publish counts those.
	received := msg.ReceivedFrom != a.self
	var ie *InvalidError
	switch {
	case err == nil:
		msg.ValidatorData = ann
		if received {
			receivedAccepted.Inc()
		}
		return pubsub.ValidationAccept
	case errors.As(err, &ie) && ie.Verdict == Ignore:
		if received {
			receivedIgnored.Inc()
		}
		return pubsub.ValidationIgnore
	}
	if received {
		receivedRejected.Inc()
	}
	a.rejected.inc()
	log.Debugw("announcement rejected", "peer", msg.ReceivedFrom, "err", err)
	if a.cfg.Rejected != nil {
		reason := "invalid"
		if ie != nil {
			reason = ie.Reason
		}
		a.cfg.Rejected(msg.ReceivedFrom, reason)
	}
	return pubsub.ValidationReject
}

// Rejected is how many announcements the validator rejected.
func (a *Announcer) Rejected() int { return a.rejected.get() }

// Traffic is what GossipSub has sent and received so far.
func (a *Announcer) Traffic() Traffic { return a.traffic.snapshot() }

// Score is p's GossipSub peer score as pubsub last reported it (every
// half second); false if pubsub does not track p.
func (a *Announcer) Score(p peer.ID) (float64, bool) { return a.scores.get(p) }

// Latest is our last signed announcement (nil before the first): peer
// exchange answers with it first.
func (a *Announcer) Latest() []byte {
	a.seqMu.Lock()
	defer a.seqMu.Unlock()
	return a.latest
}

// PubSub is the GossipSub instance (for scores and tests).
func (a *Announcer) PubSub() *pubsub.PubSub { return a.ps }

// Start announces at once, then every Interval, and feeds the table.
func (a *Announcer) Start() {
	loopCtx, stop := context.WithCancel(a.ctx)
	a.stopLoop, a.loopDone = stop, make(chan struct{})
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.receive()
	}()
	go func() {
		defer a.wg.Done()
		defer close(a.loopDone)
		a.announceLoop(loopCtx)
	}()
}

func (a *Announcer) receive() {
	for {
		msg, err := a.sub.Next(a.ctx)
		if err != nil {
			return
		}
		if msg.GetFrom() == a.self {
			continue
		}
		if ann, ok := msg.ValidatorData.(Announcement); ok {
			a.cfg.Table.Observe(ann, msg.GetData(), SourceGossip)
		}
	}
}

func (a *Announcer) announceLoop(ctx context.Context) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for {
		if _, err := a.publish(false); err != nil && ctx.Err() == nil {
			log.Warnw("announce failed", "err", err)
		}
		t := time.NewTimer(time.Duration(float64(a.cfg.Interval) * (0.9 + 0.2*rng.Float64())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// awaitLeaveSent waits, within leaveMaxWait, until the leaving
// announcement was handed to every peer of the topic, then leaveFlush.
func (a *Announcer) awaitLeaveSent() {
	peers := a.topic.ListPeers()
	limit := time.NewTimer(leaveMaxWait)
	defer limit.Stop()
	for !a.traffic.sentToAll(peers) {
		select {
		case <-a.leaveSent:
		case <-limit.C:
			log.Debugw("the leaving announcement did not reach every peer's queue in time", "peers", len(peers))
			return
		}
	}
	flush := time.NewTimer(leaveFlush)
	defer flush.Stop()
	<-flush.C
}

// publish signs and publishes one announcement. It returns the signed
// bytes, also when only publishing failed (nil if signing did).
func (a *Announcer) publish(leaving bool) ([]byte, error) {
	ann := a.cfg.Self()
	a.seqMu.Lock()
	a.seq++
	ann.Seq = a.seq
	a.seqMu.Unlock()
	ann.NodeID, ann.Time, ann.Leaving = a.self, time.Now(), leaving
	b, kept, err := SignWithin(a.cfg.Key, ann)
	if err != nil {
		return nil, err
	}
	a.noteKept(kept, len(ann.Addrs))
	if leaving {
		a.leaveSent = a.traffic.watch(b)
	}
	// Peer exchange answers with the latest: once we leave, that we left.
	a.seqMu.Lock()
	a.latest = b
	a.seqMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.topic.Publish(ctx, b); err != nil {
		sentError.Inc()
		return b, err
	}
	sentAccepted.Inc()
	return b, nil
}

// noteKept warns when our announcement cannot carry all our addresses
// (once per change, not every interval): peers then learn only the first
// ones.
func (a *Announcer) noteKept(kept, have int) {
	a.seqMu.Lock()
	changed := kept != a.kept
	a.kept = kept
	a.seqMu.Unlock()
	if changed && kept < have {
		log.Warnw("announcement carries only some of our listen addresses: too many or too long to fit",
			"announced", kept, "listening", have, "limit_bytes", MaxAnnouncementSize)
	}
}

// Close lets the leaving announcement travel before it stops GossipSub:
// pubsub writes to each peer from a queue and offers no flush, and
// cancelling it at once drops what is queued. It waits until pubsub has
// handed the announcement to every peer of the topic (its tracer says so),
// at most leaveMaxWait on a loaded machine, then leaveFlush for the
// writers to put it on the wire.
const (
	leaveMaxWait = time.Second
	leaveFlush   = 100 * time.Millisecond
)

// Close announces that we leave, then stops GossipSub. The announce loop
// stops first: an announcement after the leaving one would bring us back
// into every table until we went stale.
func (a *Announcer) Close() error {
	if a.stopLoop != nil {
		a.stopLoop()
		<-a.loopDone
	}
	signed, err := a.publish(true)
	if err != nil {
		log.Debugw("leaving announcement failed", "err", err)
	}
	// The members we are connected to are told directly even if the topic
	// refused it: that is the path that does not drop it.
	var told sync.WaitGroup
	if signed != nil && a.cfg.Farewell != nil {
		told.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), leaveMaxWait)
			defer cancel()
			a.cfg.Farewell(ctx, signed)
		})
	}
	if err == nil {
		a.awaitLeaveSent()
	}
	told.Wait()
	a.cancel()
	a.sub.Cancel()
	a.wg.Wait()
	_ = a.topic.Close()
	return nil
}
