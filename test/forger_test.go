package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peernode/discovery"
	dpb "peernode/discovery/pb"
	"peernode/node"
	"peernode/protocols/handshake"
	hspb "peernode/protocols/handshake/pb"
)

// announceSignLabel is the domain label discovery.Sign puts before the
// body it signs. The test needs it to sign announcements that Sign refuses
// to make (oversize, bad addresses); TestForgedAnnouncementsRejected
// checks it still matches, by comparing a hand-signed announcement with
// Sign's bytes.
const announceSignLabel = "peernode announcement v1\x00"

// graylistMargin is a score comfortably above the announcement topic's
// GraylistThreshold (-80, in discovery's scoreParams): below that, a node
// drops every RPC of the peer, so a forger must wait for its score to
// recover before its next message can be heard at all.
const graylistMargin = -70.0

// forgedPrefix starts the name of every forged announcement, so a test can
// check that none of them ever shows in a member table.
const forgedPrefix = "forged-"

// forger is a bare libp2p host that completed the handshake by hand with
// every node of a cluster, so each holds it Verified and admits it to the
// announcement topic, and that runs its own GossipSub (StrictSign, no
// validator): it can publish anything on the topic.
type forger struct {
	t     *testing.T
	name  string
	key   crypto.PrivKey
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	nodes []*node.Node
}

// newForger starts a forger, verifies it with every node and waits until
// each side lists the other among the topic's peers.
func newForger(t *testing.T, name string, nodes []*node.Node) *forger {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	h := NewHost(t, libp2p.Identity(key))
	ctx, cancel := context.WithCancel(context.Background())
	// Flood publishing sends each message to every topic peer at once, not
	// to a mesh that only forms at the next heartbeat.
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithFloodPublish(true))
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	// Registered after NewHost's cleanup, so it runs before the host closes.
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	topicName := discovery.Topic(nodes[0].Config().Network.ID)
	topic, err := ps.Join(topicName)
	require.NoError(t, err)
	sub, err := topic.Subscribe() // a subscriber is what makes it a topic peer
	require.NoError(t, err)
	wg.Add(1)
	go func() { // drains what the nodes send; exits when ctx is cancelled
		defer wg.Done()
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()

	f := &forger{t: t, name: name, key: key, h: h, ps: ps, topic: topic, nodes: nodes}
	for _, n := range nodes {
		f.verifyWith(n)
	}
	poll(t, "the forger "+name+" and every node list each other on the topic", func() error {
		for _, n := range nodes {
			if !slices.Contains(n.Announcer().PubSub().ListPeers(topicName), h.ID()) {
				return fmt.Errorf("%s does not list %s on the topic", n.Config().Name, name)
			}
			if !slices.Contains(ps.ListPeers(topicName), n.ID()) {
				return fmt.Errorf("%s does not list %s on the topic", name, n.Config().Name)
			}
		}
		return nil
	})
	return f
}

// verifyWith connects to n and completes the handshake by hand, as the
// initiator: hello, n's hello, proof, n's proof and result, our result.
func (f *forger) verifyWith(n *node.Node) {
	t := f.t
	t.Helper()
	nw := n.Config().Network
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, f.h.Connect(ctx, AddrInfo(n)))
	raw := OpenRaw(t, f.h, n.ID())
	hello := ValidHello(nw)
	hello.Name = f.name
	raw.Send(HelloFrame(hello))
	fr, err := raw.Recv()
	require.NoError(t, err)
	require.NotNil(t, fr.GetHello(), "%s answered %v, not a hello", n.Config().Name, fr)
	tr := handshake.Transcript(nw.ID, f.h.ID(), n.ID(), Marshal(t, hello), Marshal(t, fr.GetHello()))
	proof, err := handshake.Prove(f.key, nw.HandshakeKey, true, tr)
	require.NoError(t, err)
	raw.Send(ProofFrame(proof))
	res := raw.RecvResult()
	require.Equal(t, hspb.Outcome_VERIFIED, res.GetOutcome(), res.GetMessage())
	raw.Send(ResultFrame(&hspb.Result{Outcome: hspb.Outcome_VERIFIED}))
	WaitVerified(t, n, f.h.ID())
}

func (f *forger) id() peer.ID { return f.h.ID() }

// publish puts b on the topic as a message of the forger's own, signed by
// its pubsub key as StrictSign demands.
func (f *forger) publish(b []byte) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(f.t, f.topic.Publish(ctx, b), "%s publishes", f.name)
}

// announcement is an honest announcement of the forger.
func (f *forger) announcement(seq uint64, name string) discovery.Announcement {
	return discovery.Announcement{
		NodeID: f.id(), Name: name, Role: string(handshake.RoleFull), Version: node.Version,
		Seq: seq, Time: time.Now(),
	}
}

// announce signs an honest announcement, publishes it and returns it.
func (f *forger) announce(seq uint64, name string) []byte {
	f.t.Helper()
	b, err := discovery.Sign(f.key, f.announcement(seq, name))
	require.NoError(f.t, err)
	f.publish(b)
	return b
}

// wire is a's wire form, as discovery.Sign encodes it.
func wire(a discovery.Announcement) *dpb.Announcement {
	m := &dpb.Announcement{
		NodeId: []byte(a.NodeID), Name: a.Name, Role: a.Role, BlobCount: a.BlobCount, BytesStored: a.BytesStored,
		SoftwareVersion: a.Version, Seq: a.Seq, TimestampMs: a.Time.UnixMilli(), Leaving: a.Leaving,
	}
	for _, addr := range a.Addrs {
		m.ListenAddrs = append(m.ListenAddrs, addr.Bytes())
	}
	return m
}

// handSign signs m with key as discovery.Sign would, without its checks.
func handSign(t *testing.T, key crypto.PrivKey, m *dpb.Announcement) []byte {
	t.Helper()
	body := Marshal(t, m)
	sig, err := key.Sign(append([]byte(announceSignLabel), body...))
	require.NoError(t, err)
	return Marshal(t, &dpb.SignedAnnouncement{Announcement: body, Signature: sig})
}

// requireVerdict checks discovery.Validate's verdict on b published by
// from, with lastSeq as the receiver's state: the payloads exercise the
// check they are meant to.
func requireVerdict(t *testing.T, b []byte, from peer.ID, lastSeq uint64, v discovery.Verdict, reason string) {
	t.Helper()
	_, err := discovery.Validate(b, from, time.Now(), func(peer.ID) (uint64, bool) { return lastSeq, lastSeq > 0 })
	var ie *discovery.InvalidError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, v, ie.Verdict, ie.Error())
	require.Equal(t, reason, ie.Reason, ie.Error())
}

// errFatal marks a poll condition that must fail the test at once.
type errFatal struct{ error }

// poll waits until check returns nil. A check that returns an errFatal
// fails the test at once; on timeout, the last error says what was
// missing.
func poll(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		var fatal errFatal
		if errors.As(err, &fatal) {
			t.Fatalf("%s: %v", what, fatal.error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// entryIs reports an error unless n's table holds p's signed announcement
// with seq and name.
func entryIs(n *node.Node, p peer.ID, seq uint64, name string) error {
	m, ok := discoveryMember(n, p)
	switch {
	case !ok:
		return fmt.Errorf("%s has no entry for %s", n.Config().Name, p)
	case m.Signed == nil:
		return fmt.Errorf("%s knows %s from its %s only", n.Config().Name, p, m.Source)
	case m.Announcement.Seq != seq || m.Announcement.Name != name:
		return fmt.Errorf("%s holds %s's announcement seq %d %q, want seq %d %q",
			n.Config().Name, p, m.Announcement.Seq, m.Announcement.Name, seq, name)
	}
	return nil
}

// noForgery reports, as an errFatal, any forged announcement in any table:
// one named forgedPrefix..., or of a node in banned.
func noForgery(nodes []*node.Node, banned ...peer.ID) error {
	for _, n := range nodes {
		for _, m := range n.Members() {
			if strings.HasPrefix(m.Announcement.Name, forgedPrefix) || slices.Contains(banned, m.NodeID) {
				return errFatal{fmt.Errorf("%s's table holds a forged announcement: %s seq %d %q (from %s)",
					n.Config().Name, m.NodeID, m.Announcement.Seq, m.Announcement.Name, m.Source)}
			}
		}
	}
	return nil
}

// waitScore waits until every node's last reported GossipSub score of p
// satisfies ok.
func waitScore(t *testing.T, nodes []*node.Node, p peer.ID, what string, ok func(float64) bool) {
	t.Helper()
	poll(t, fmt.Sprintf("the score of %s %s at every node", p, what), func() error {
		for _, n := range nodes {
			s, tracked := n.Announcer().Score(p)
			if !tracked || !ok(s) {
				return fmt.Errorf("%s: score %.2f (tracked %v)", n.Config().Name, s, tracked)
			}
		}
		return nil
	})
}

// waitEntries waits until every node holds p's signed announcement with seq
// and name.
func waitEntries(t *testing.T, nodes []*node.Node, p peer.ID, seq uint64, name string) {
	t.Helper()
	poll(t, fmt.Sprintf("announcement %d %q of %s in every table", seq, name, p), func() error {
		for _, n := range nodes {
			if err := entryIs(n, p, seq, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitRejected waits until n's validator has rejected exactly want
// announcements; more is a failure at once.
func waitRejected(t *testing.T, n *node.Node, want int) {
	t.Helper()
	poll(t, fmt.Sprintf("%s rejecting %d announcements", n.Config().Name, want), func() error {
		switch got := n.Announcer().Rejected(); {
		case got > want:
			return errFatal{fmt.Errorf("%d rejections, want %d", got, want)}
		case got < want:
			return fmt.Errorf("%d rejections, want %d", got, want)
		}
		return nil
	})
}

// forgedSeq is the sequence number of forged announcements of a forger's
// own: were one accepted, the forger's later honest announcements would be
// ignored, and the test would see it.
const forgedSeq = 1 << 40

// forgery is one reject-class message and the forger that publishes it.
type forgery struct {
	forger  *forger
	reason  string // discovery.Validate's reason for it
	payload []byte
}

// makeForgeries builds one forgery per reject-class check, each wrong in
// that one way, and the node ID of the impostor that must never enter a
// table.
func makeForgeries(t *testing.T, forgers map[string]*forger, nodes []*node.Node) ([]forgery, peer.ID) {
	t.Helper()
	var out []forgery
	// The forger's own announcement with its signature broken.
	f := forgers["badsig"]
	b, err := discovery.Sign(f.key, f.announcement(forgedSeq, forgedPrefix+"signature"))
	require.NoError(t, err)
	var s dpb.SignedAnnouncement
	require.NoError(t, proto.Unmarshal(b, &s))
	s.Signature[len(s.Signature)/2] ^= 0x55
	out = append(out, forgery{f, "bad_signature", Marshal(t, &s)})

	// A correctly signed announcement of another node, whose key the forger
	// holds: a fresh identity.
	impostorKey, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	impostorID, err := peer.IDFromPrivateKey(impostorKey)
	require.NoError(t, err)
	b, err = discovery.Sign(impostorKey, discovery.Announcement{
		NodeID: impostorID, Name: forgedPrefix + "sender", Role: string(handshake.RoleFull), Version: node.Version,
		Seq: forgedSeq, Time: time.Now(),
	})
	require.NoError(t, err)
	out = append(out, forgery{forgers["impostor"], "wrong_sender", b})

	// A real node's genuine announcement, relayed as the forger's own.
	m, ok := discoveryMember(nodes[0], nodes[len(nodes)-1].ID())
	require.True(t, ok && m.Signed != nil)
	out = append(out, forgery{forgers["relay"], "wrong_sender", m.Signed})

	// The forger's own announcement, well formed but over 4 KiB: 32 long
	// DNS addresses, each within the per-address limit. discovery.Sign
	// makes no such announcement: it is signed by hand.
	f = forgers["oversize"]
	a := f.announcement(forgedSeq, forgedPrefix+"oversize")
	dnsName := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".example"
	for i := range 32 {
		a.Addrs = append(a.Addrs, ma.StringCast(fmt.Sprintf("/dns4/%s/tcp/%d", dnsName, 4000+i)))
	}
	b = handSign(t, f.key, wire(a))
	require.Greater(t, len(b), discovery.MaxAnnouncementSize)
	require.Less(t, len(b), 3*discovery.MaxAnnouncementSize/2, "within the nodes' pubsub message limit")
	out = append(out, forgery{f, "oversize", b})

	// The forger's own announcement, correctly signed, with one address
	// that is not a multiaddr.
	f = forgers["badaddrs"]
	w := wire(f.announcement(forgedSeq, forgedPrefix+"addrs"))
	w.ListenAddrs = [][]byte{ma.StringCast("/ip4/127.0.0.1/tcp/4001").Bytes(), {0xff, 0xff, 0xff, 0xff, 0x0f}}
	out = append(out, forgery{f, "bad_addrs", handSign(t, f.key, w)})

	for _, fg := range out {
		requireVerdict(t, fg.payload, fg.forger.id(), 0, discovery.Reject, fg.reason)
	}
	return out, impostorID
}

// replayIgnored has r (heard once, seq 1) announce seq 2, then publish
// replays of seq 2 and seq 1, a rollback to seq 1 and a stale
// announcement, then an honest seq 3: every table moves from seq 2 to seq
// 3 and holds nothing else, and no node penalises r.
func replayIgnored(t *testing.T, nodes []*node.Node, r *forger, banned peer.ID) {
	t.Helper()
	first, err := discovery.Sign(r.key, r.announcement(1, r.name))
	require.NoError(t, err)
	second := r.announce(2, r.name+"-2")
	waitEntries(t, nodes, r.id(), 2, r.name+"-2")
	rollback, err := discovery.Sign(r.key, r.announcement(1, forgedPrefix+"rollback"))
	require.NoError(t, err)
	staleAnn := r.announcement(forgedSeq, forgedPrefix+"stale")
	staleAnn.Time = time.Now().Add(-2 * discovery.MaxStaleness)
	stale, err := discovery.Sign(r.key, staleAnn)
	require.NoError(t, err)
	for _, ig := range []struct {
		payload []byte
		reason  string
	}{{second, "old_seq"}, {first, "old_seq"}, {rollback, "old_seq"}, {stale, "stale"}} {
		requireVerdict(t, ig.payload, r.id(), 2, discovery.Ignore, ig.reason)
		r.publish(ig.payload)
	}
	// Once every node holds seq 3, they heard what came before it; until
	// then every table must show seq 2 or 3. Had a node rejected the
	// replays, it would graylist r and never hear seq 3.
	r.announce(3, r.name+"-3")
	poll(t, "the replayer's third announcement in every table", func() error {
		if err := noForgery(nodes, banned); err != nil {
			return err
		}
		for _, n := range nodes {
			// One look at the entry: seq 3 may land between two.
			m, ok := discoveryMember(n, r.id())
			switch {
			case ok && m.Signed != nil && m.Announcement.Seq == 3 && m.Announcement.Name == r.name+"-3":
				continue
			case ok && m.Signed != nil && m.Announcement.Seq == 2 && m.Announcement.Name == r.name+"-2":
				return fmt.Errorf("%s still holds seq 2", n.Config().Name)
			case !ok:
				return errFatal{fmt.Errorf("%s lost the replayer's entry", n.Config().Name)}
			}
			return errFatal{fmt.Errorf("neither seq 2 nor 3: %s holds seq %d %q (from %s)",
				n.Config().Name, m.Announcement.Seq, m.Announcement.Name, m.Source)}
		}
		return nil
	})
	for _, n := range nodes {
		s, ok := n.Announcer().Score(r.id())
		require.True(t, ok && s >= 0, "%s scores the replayer %.2f (tracked %v): ignoring is no penalty", n.Config().Name, s, ok)
	}
}

// A member that passed the handshake and is admitted to the topic forges
// announcements: a bad signature, another node's announcement (made with
// a key it holds, and relayed from a real node), an oversize one, one with
// a malformed address. Each node it is Verified with rejects each of them,
// none enters any member table, and its GossipSub score drops below zero.
// Replayed, rolled-back and stale announcements are ignored: the table
// keeps the highest sequence number and the sender is not penalised. The
// forgers' honest announcements, before and after, do enter every table,
// so the test fails if the forgers are simply not heard.
//
// Each forgery comes from a forger of its own: one rejected message costs
// a forger -100, below the graylist threshold (-80), after which a node
// drops everything the forger sends for about two seconds, so a single
// forger could not get five forgeries validated in turn.
func TestForgedAnnouncementsRejected(t *testing.T) {
	t.Parallel()
	// The forgers announce only when told: a minute's StaleAfter keeps their
	// entries from being pruned meanwhile (LocalTestConfig's is a second),
	// which would also reset the sequence number a replay is judged by.
	nodes := startStar(t, 3, func(c *node.Config) { c.StaleAfter = time.Minute })
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitMember(t, a, b.ID())
			}
		}
	}
	rejectedBefore := make([]int, len(nodes))
	for i, n := range nodes {
		rejectedBefore[i] = n.Announcer().Rejected()
	}

	// Forgers, verified by every node, each heard once honestly (seq 1).
	forgers := map[string]*forger{}
	for _, name := range []string{"badsig", "impostor", "relay", "oversize", "badaddrs", "replayer"} {
		forgers[name] = newForger(t, name, nodes)
		forgers[name].announce(1, name)
	}
	for _, f := range forgers {
		waitEntries(t, nodes, f.id(), 1, f.name)
	}

	// The hand signer signs exactly as discovery.Sign does (ed25519 is
	// deterministic), so the hand-signed forgeries fail only where meant to.
	a := forgers["badsig"].announcement(7, "check")
	want, err := discovery.Sign(forgers["badsig"].key, a)
	require.NoError(t, err)
	require.Equal(t, want, handSign(t, forgers["badsig"].key, wire(a)), "the hand signer no longer signs as discovery.Sign")

	// Every node rejects every forgery; each forger's score drops below 0.
	forgeries, impostor := makeForgeries(t, forgers, nodes)
	for _, fg := range forgeries {
		fg.forger.publish(fg.payload)
	}
	for i, n := range nodes {
		waitRejected(t, n, rejectedBefore[i]+len(forgeries))
	}
	for _, fg := range forgeries {
		waitScore(t, nodes, fg.forger.id(), "below 0", func(s float64) bool { return s < 0 })
	}
	require.NoError(t, noForgery(nodes, impostor))

	replayIgnored(t, nodes, forgers["replayer"], impostor)

	// Once a forger's score is back above the graylist, its next honest
	// announcement enters every table: the forgeries were heard before it,
	// and none of them is in any table.
	for _, fg := range forgeries {
		waitScore(t, nodes, fg.forger.id(), "back above the graylist", func(s float64) bool { return s > graylistMargin })
		fg.forger.announce(2, fg.forger.name+"-2")
	}
	for _, fg := range forgeries {
		waitEntries(t, nodes, fg.forger.id(), 2, fg.forger.name+"-2")
	}
	require.NoError(t, noForgery(nodes, impostor))
	for i, n := range nodes {
		require.Equal(t, rejectedBefore[i]+len(forgeries), n.Announcer().Rejected(),
			"%s: only the forgeries were rejected (ignored and honest announcements are not)", n.Config().Name)
	}
}
