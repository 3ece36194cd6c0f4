package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/discovery"
	"peernode/internal/atomicfile"
	"peernode/protocols/handshake"
	"peernode/scoring"
)

// scoresFileName keeps peer scores across restarts, beside the member table.
const scoresFileName = "scores.json"

// Connection manager tags.
const (
	tagScore = "peernode-score"
	tagBest  = "peernode-best"
)

// Penalties for misbehaviour, in units of scoring penalty (one unit halves
// the penalty component; it halves again every PenaltyHalfLife).
const (
	penaltyViolation    = 1   // a stream before verification
	penaltyAnnouncement = 1   // an invalid announcement forwarded to us
	penaltyBadProof     = 2   // a handshake proof that did not check out
	penaltyBanned       = 0.5 // refused for another reason that bans
)

func (n *Node) scoresPath() string { return filepath.Join(n.cfg.DataDir, scoresFileName) }

// wireScoring creates the score book, restores saved scores and the pinger.
func (n *Node) wireScoring() error {
	var err error
	if n.book, err = scoring.NewBook(n.cfg.Scoring, nil); err != nil {
		return err
	}
	if b, rerr := os.ReadFile(n.scoresPath()); rerr == nil {
		restored, skipped, err := n.book.Restore(b)
		if err != nil || skipped > 0 {
			aside, aerr := atomicfile.CopyAside(n.scoresPath(), time.Now())
			if aerr != nil {
				return fmt.Errorf("scores %s are unreadable (%v) and cannot be copied aside: %w", n.scoresPath(), err, aerr)
			}
			log.Warnw("saved scores partly or wholly unreadable; kept aside", "restored", restored, "skipped", skipped, "err", err, "kept_as", aside)
		}
	} else if !errors.Is(rerr, os.ErrNotExist) {
		log.Warnw("saved scores not read; starting without", "err", rerr)
	}
	n.pinger, err = scoring.NewPinger(n.host, n.book, n.verifiedPeers, n.cfg.Ping)
	return err
}

// verifiedPeers are the Verified peers with a live connection.
func (n *Node) verifiedPeers() []peer.ID {
	var out []peer.ID
	for _, p := range n.reg.all() {
		if p.Status == StatusVerified && len(p.Conns) > 0 {
			out = append(out, p.ID)
		}
	}
	return out
}

// scorePeerEvent feeds a registry event to the score book.
func (n *Node) scorePeerEvent(ev EvtPeer) {
	switch ev.Kind {
	case EventVerified:
		n.book.Connected(ev.Peer)
		if info, ok := n.reg.info(ev.Peer); ok {
			n.book.ObserveRTT(ev.Peer, info.HandshakeRTT)
			n.book.SetRelayed(ev.Peer, onlyRelayed(info.Conns))
		}
	case EventDisconnected:
		n.book.Disconnected(ev.Peer)
	case EventViolation:
		n.book.Penalize(ev.Peer, penaltyViolation)
	case EventRejected:
		switch ev.Reason {
		case "bad_proof":
			n.book.Penalize(ev.Peer, penaltyBadProof)
		case "banned", "not_allowed", "wrong_network":
			n.book.Penalize(ev.Peer, penaltyBanned)
		}
	}
}

// onlyRelayed reports whether every connection goes through a relay (a
// limited connection, or a /p2p-circuit address).
func onlyRelayed(conns []network.Conn) bool {
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if !c.Stat().Limited && !isCircuit(c.RemoteMultiaddr()) {
			return false
		}
	}
	return true
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// BestPeers returns up to k of the Verified, connected peers of the given
// role ("" for any), best score first; now and then the last place goes to
// a peer without samples, so new peers get tried (scoring.Book.Best).
func (n *Node) BestPeers(k int, role handshake.Role) []peer.ID {
	roles := map[peer.ID]handshake.Role{}
	var cands []peer.ID
	for _, p := range n.reg.all() {
		if p.Status == StatusVerified && len(p.Conns) > 0 {
			cands = append(cands, p.ID)
			roles[p.ID] = p.Identity.Role
		}
	}
	var filter func(peer.ID) bool
	if role != "" {
		filter = func(p peer.ID) bool { return roles[p] == role }
	}
	var out []peer.ID
	for _, r := range n.book.Best(cands, k, filter) {
		out = append(out, r.Peer)
	}
	return out
}

// scoreTableEvent records announcement freshness.
func (n *Node) scoreTableEvent(ev discovery.Event) {
	if ev.Kind == discovery.EventJoined || ev.Kind == discovery.EventUpdated {
		if ev.Member.Signed != nil {
			n.book.Announced(ev.Member.NodeID, ev.Member.LastHeard)
		}
	}
}

// scoreLoop pushes scores to the connection manager and reads GossipSub
// scores back, every ScoreInterval.
func (n *Node) scoreLoop() {
	n.spawn(func() {
		t := time.NewTicker(n.cfg.ScoreInterval)
		defer t.Stop()
		protected := map[peer.ID]bool{}
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
			n.applyScores(protected)
		}
	})
}

// applyScores tags every verified connection with its score (the
// connection manager trims low scores first) and protects the
// ProtectBest best.
func (n *Node) applyScores(protected map[peer.ID]bool) {
	peers := n.verifiedPeers()
	for _, p := range peers {
		if s, ok := n.ann.Score(p); ok {
			n.book.SetGossipScore(p, s)
		}
	}
	cm := n.host.ConnManager()
	best := map[peer.ID]bool{}
	for i, r := range n.book.Rank(peers) {
		cm.TagPeer(r.Peer, tagScore, int(r.Score*100))
		if i < n.cfg.ProtectBest {
			best[r.Peer] = true
		}
	}
	for p := range best {
		if !protected[p] {
			cm.Protect(p, tagBest)
			protected[p] = true
		}
	}
	for p := range protected {
		if !best[p] {
			cm.Unprotect(p, tagBest)
			delete(protected, p)
		}
	}
}

// saveScores writes the score book beside the member table.
func (n *Node) saveScores() error {
	b, err := n.book.MarshalJSON()
	if err != nil {
		return err
	}
	return atomicfile.Write(n.scoresPath(), append(b, '\n'), 0o600)
}

// Score explains a peer's score.
func (n *Node) Score(p peer.ID) scoring.Explanation { return n.book.Explain(p) }

// Scores is the score book (for routing: Rank, Best).
func (n *Node) Scores() *scoring.Book { return n.book }

// Ping pings a node count times, one after another, and returns the RTTs;
// each result also counts as a sample of its score. It stops at the first
// failure.
func (n *Node) Ping(ctx context.Context, p peer.ID, count int) ([]time.Duration, error) {
	if count < 1 {
		return nil, fmt.Errorf("ping count %d: want at least 1", count)
	}
	if err := n.ensureVerified(ctx, p); err != nil {
		return nil, err
	}
	var rtts []time.Duration
	for range count {
		rtt, err := n.pinger.Ping(ctx, p)
		if err != nil {
			if ctx.Err() == nil {
				n.book.ReportRequest(p, scoring.PingProto, 0, scoring.Failure)
			}
			return rtts, err
		}
		n.book.ReportRequest(p, scoring.PingProto, rtt, scoring.Success)
		rtts = append(rtts, rtt)
	}
	return rtts, nil
}

// PingTimeout is how long one ping may take.
func (n *Node) PingTimeout() time.Duration { return n.cfg.Ping.Timeout }
