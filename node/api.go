package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/api"
	"peernode/discovery"
	"peernode/protocols/handshake"
	"peernode/scoring"
)

// apiShutdownTimeout bounds how long Close waits for API requests in flight.
const apiShutdownTimeout = 2 * time.Second

// apiServer is the running control API.
type apiServer struct {
	srv     *api.Server
	addr    string
	dataDir string
	done    chan struct{}
}

// startAPI opens the API listener, records its address in the data directory
// for the CLI and serves until close.
func startAPI(n *Node) (*apiServer, error) {
	tok, err := api.LoadOrCreateToken(n.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ln, err := api.Listen(n.cfg.APIAddr, n.cfg.APIAllowRemote)
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	if err := api.WriteAddrFile(n.cfg.DataDir, addr); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("record the API address: %w", err)
	}
	s := &apiServer{srv: api.NewServer(backend{n}, tok), addr: addr, dataDir: n.cfg.DataDir, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil {
			log.Errorw("API server stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *apiServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), apiShutdownTimeout)
	defer cancel()
	err := s.srv.Close(ctx)
	<-s.done
	return errors.Join(err, api.RemoveAddrFile(s.dataDir))
}

// backend adapts a Node to api.Backend.
type backend struct{ n *Node }

func (b backend) ID() api.IDInfo {
	n := b.n
	return api.IDInfo{
		NodeID:            n.id.String(),
		Name:              n.cfg.Name,
		NetworkID:         n.cfg.Network.ID,
		Private:           n.cfg.Network.Private,
		SecretFingerprint: fingerprintIfPrivate(n.cfg.Network),
		Addrs:             strs(n.Addrs()),
		Version:           Version,
	}
}

// Peers lists every node with a live connection, those that presented an
// identity and went away, so operators see who left, and the members of
// the member table the registry does not list, each with its score. The
// server sorts them.
func (b backend) Peers() []api.PeerInfo {
	n := b.n
	members := n.Members()
	byID := make(map[peer.ID]discovery.Member, len(members))
	for _, m := range members {
		byID[m.NodeID] = m
	}
	all := n.Peers()
	reg := make(map[peer.ID]PeerInfo, len(all))
	listed := map[peer.ID]bool{n.id: true}
	out := make([]api.PeerInfo, 0, len(all)+len(members))
	for _, pi := range all {
		reg[pi.ID] = pi
		if len(pi.Conns) == 0 && !pi.HasIdentity {
			continue
		}
		p := peerInfo(pi)
		p.Connected = len(pi.Conns) > 0 || hasLiveConn(n, pi.ID)
		if m, ok := byID[pi.ID]; ok {
			p.LastHeard, p.BlobCount = m.LastHeard.UTC(), m.Announcement.BlobCount
		}
		out = append(out, withScore(n, pi.ID, p))
		listed[pi.ID] = true
	}
	for _, m := range members {
		if !listed[m.NodeID] {
			pi, known := reg[m.NodeID]
			out = append(out, withScore(n, m.NodeID, memberPeerInfo(m, pi, known, hasLiveConn(n, m.NodeID))))
		}
	}
	return out
}

// withScore is the peers entry e of node p with p's score.
func withScore(n *Node, p peer.ID, e api.PeerInfo) api.PeerInfo {
	x := n.Score(p)
	e.Score, e.RTTMillis, e.Reliability = x.Score, rttMillis(x), x.Reliability
	return e
}

// rttMillis is e's smoothed RTT in milliseconds, nil without any sample.
func rttMillis(e scoring.Explanation) *float64 {
	for _, c := range e.Components {
		if c.Name == scoring.ComponentLatency && c.Samples > 0 {
			ms := api.Millis(e.SmoothedRTT)
			return &ms
		}
	}
	return nil
}

// Score explains a node's score. This node has none; a node neither the
// registry nor the member table knows, and without any sample, is unknown.
func (b backend) Score(p peer.ID) (api.ScoreExplanation, error) {
	n := b.n
	if p == n.id {
		return api.ScoreExplanation{}, api.Mark(fmt.Errorf("score of %s: that is this node, which does not score itself", p), api.ErrBadRequest)
	}
	e := n.Score(p)
	out := api.ScoreExplanation{
		NodeID: p.String(), Score: e.Score, RTTMillis: rttMillis(e), Reliability: e.Reliability,
		Components: make([]api.ScoreComponent, 0, len(e.Components)),
	}
	for _, c := range e.Components {
		out.Components = append(out.Components, api.ScoreComponent{
			Name: c.Name, Weight: c.Weight, Value: c.Value, Contribution: c.Contribution,
			Samples: c.Samples, Last: c.Last.UTC(), Detail: c.Detail,
		})
	}
	if !out.HasSamples() && !b.knows(p) {
		return api.ScoreExplanation{}, api.Mark(fmt.Errorf("score of %s: unknown node: neither in the registry nor in the member table, and never sampled", p), api.ErrNotFound)
	}
	return out, nil
}

// knows reports whether the registry or the member table holds p.
func (b backend) knows(p peer.ID) bool {
	if _, ok := b.n.PeerInfo(p); ok {
		return true
	}
	return slices.ContainsFunc(b.n.Members(), func(m discovery.Member) bool { return m.NodeID == p })
}

// Ping pings a node count times within count ping timeouts plus a dial
// timeout (to reach and verify the node first), or sooner if ctx ends.
func (b backend) Ping(ctx context.Context, p peer.ID, count int) ([]time.Duration, error) {
	n := b.n
	if p == n.id {
		return nil, api.Mark(fmt.Errorf("ping %s: that is this node", p), api.ErrBadRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(count)*n.PingTimeout()+n.cfg.DialTimeout)
	defer cancel()
	return n.Ping(ctx, p, count)
}

// memberPeerInfo is the peers entry of a member the registry does not list:
// what its announcement says, with the registry's status (and last failure)
// if it knows the node, else "disconnected", or "new" for a connection the
// registry has not seen yet.
func memberPeerInfo(m discovery.Member, pi PeerInfo, known, connected bool) api.PeerInfo {
	out := api.PeerInfo{NodeID: m.NodeID.String(), Status: api.PeerStatusDisconnected}
	switch {
	case known:
		out = peerInfo(pi)
	case connected:
		out.Status = api.PeerStatusNew
	}
	a := m.Announcement
	out.Addrs = p2pAddrs(m.NodeID, a.Addrs)
	out.Name, out.Role, out.Version = a.Name, a.Role, a.Version
	out.Connected, out.LastHeard, out.BlobCount = connected, m.LastHeard.UTC(), a.BlobCount
	return out
}

// hasLiveConn reports whether the host holds a connection to p.
func hasLiveConn(n *Node, p peer.ID) bool { return len(n.host.Network().ConnsToPeer(p)) > 0 }

// Members lists the member table with each member's standing in the
// registry, by node ID.
func (b backend) Members() []api.Member {
	n := b.n
	status := map[peer.ID]string{}
	for _, pi := range n.Peers() {
		status[pi.ID] = pi.Status.String()
	}
	ms := n.Members()
	out := make([]api.Member, 0, len(ms))
	for _, m := range ms {
		a := m.Announcement
		st, ok := status[m.NodeID]
		if !ok {
			st = api.MemberStatusUnknown
		}
		out = append(out, api.Member{
			NodeID: m.NodeID.String(), Name: a.Name, Role: a.Role, Addrs: p2pAddrs(m.NodeID, a.Addrs),
			Version: a.Version, BlobCount: a.BlobCount, BytesStored: a.BytesStored, Seq: a.Seq,
			FirstHeard: m.FirstHeard.UTC(), LastHeard: m.LastHeard.UTC(), Source: string(m.Source),
			Connected: hasLiveConn(n, m.NodeID), Status: st,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Crawl walks the network from this node within req's bounds.
func (b backend) Crawl(ctx context.Context, req api.CrawlRequest) (api.CrawlResult, error) {
	cfg := discovery.DefaultCrawlConfig()
	cfg.Depth, cfg.MaxPeers, cfg.Timeout = req.Depth, req.MaxPeers, req.Timeout
	if err := cfg.Validate(); err != nil {
		return api.CrawlResult{}, api.Mark(err, api.ErrBadRequest)
	}
	res, err := b.n.Crawl(ctx, cfg)
	if err != nil {
		return api.CrawlResult{}, err
	}
	out := api.CrawlResult{
		Nodes:   make([]api.CrawledNode, 0, len(res.Nodes)),
		Members: res.Members, Dropped: res.Dropped, Unvisited: res.Unvisited, TimedOut: res.TimedOut,
		ElapsedMillis: float64(res.Elapsed) / float64(time.Millisecond),
	}
	for _, cn := range res.Nodes {
		c := api.CrawledNode{
			NodeID: cn.NodeID.String(), Depth: cn.Depth, Addrs: []string{},
			ConnectedCount: len(cn.Connected), Connected: strs(cn.Connected),
			Announcements: cn.Announcements, Error: cn.Err,
		}
		if cn.Via != "" {
			c.Via = cn.Via.String()
		}
		if a := cn.Announcement; a != nil {
			c.Name, c.Addrs = a.Name, p2pAddrs(cn.NodeID, a.Addrs)
		}
		out.Nodes = append(out.Nodes, c)
	}
	return out, nil
}

func (b backend) Connect(ctx context.Context, addr string) (api.ConnectResult, error) {
	infos, err := ParseBootstrap([]string{addr})
	if err != nil {
		return api.ConnectResult{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	st, err := b.n.Join(ctx, infos[0])
	if err != nil {
		return api.ConnectResult{}, err
	}
	return api.ConnectResult{NodeID: infos[0].ID.String(), Status: st.String()}, nil
}

func peerInfo(pi PeerInfo) api.PeerInfo {
	out := api.PeerInfo{
		NodeID:             pi.ID.String(),
		Status:             pi.Status.String(),
		HandshakeRTTMillis: float64(pi.HandshakeRTT) / float64(time.Millisecond),
	}
	if pi.HasIdentity {
		out.Name, out.Role, out.Version = pi.Identity.Name, string(pi.Identity.Role), pi.Identity.Version
	}
	if f := pi.LastFailure; f != nil {
		out.LastFailure = &api.Failure{Reason: f.Reason, Message: f.Message, At: f.At.UTC()}
	}
	if len(pi.Conns) == 0 {
		out.Addrs = p2pAddrs(pi.ID, pi.Identity.ListenAddrs)
		return out
	}
	oldest := pi.Conns[0]
	out.Addrs = make([]string, 0, len(pi.Conns))
	for _, c := range pi.Conns {
		if c.Stat().Opened.Before(oldest.Stat().Opened) {
			oldest = c
		}
		out.Addrs = append(out.Addrs, c.RemoteMultiaddr().String()+"/p2p/"+pi.ID.String())
	}
	out.Direction = strings.ToLower(oldest.Stat().Direction.String())
	out.ConnectedSince = oldest.Stat().Opened.UTC()
	return out
}

// p2pAddrs turns a node's listen addresses into full multiaddrs ending in
// /p2p/<id>; never nil.
func p2pAddrs(p peer.ID, addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String()+"/p2p/"+p.String())
	}
	return out
}

func (b backend) Trust() api.TrustList {
	recs := b.n.TrustRecords()
	out := api.TrustList{Policy: b.n.TrustPolicy().String(), Records: make([]api.TrustRecord, 0, len(recs))}
	for _, r := range recs {
		out.Records = append(out.Records, trustRecord(r))
	}
	return out
}

func trustRecord(r handshake.TrustRecord) api.TrustRecord {
	return api.TrustRecord{
		NodeID: r.NodeID.String(), PublicKey: r.PublicKey, Name: r.Name, Decision: string(r.Decision),
		Reason: r.Reason, Created: r.Created.UTC(), Expires: r.Expires.UTC(),
	}
}

func (b backend) Pending() []api.PendingRequest {
	reqs := b.n.PendingRequests()
	out := make([]api.PendingRequest, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, api.PendingRequest{
			NodeID: r.NodeID.String(), Name: r.Name, Role: string(r.Role), Version: r.Version,
			Addrs: p2pAddrs(r.NodeID, r.Addrs), Justification: r.Justification,
			Since: r.Since.UTC(), Expires: r.Expires.UTC(),
		})
	}
	return out
}

// TrustAction applies an operator's decision and returns the record it left.
func (b backend) TrustAction(action api.TrustAction, p peer.ID, reason string) (api.TrustRecord, error) {
	n := b.n
	if p == n.id {
		return api.TrustRecord{}, api.Mark(fmt.Errorf("%s %s: that is this node", action, p), api.ErrBadRequest)
	}
	var (
		rec handshake.TrustRecord
		err error
	)
	switch action {
	case api.ActionApprove:
		rec, err = n.Approve(p, reason)
	case api.ActionReject:
		rec, err = n.Reject(p, reason)
	case api.ActionRevoke:
		rec, err = n.Revoke(p, reason)
	case api.ActionAllow:
		rec, err = n.Allow(p, reason)
	case api.ActionDeny:
		rec, err = n.Deny(p, reason)
	default:
		err = api.Mark(fmt.Errorf("unknown trust action %q", action), api.ErrBadRequest)
	}
	if errors.Is(err, ErrNotPending) || errors.Is(err, handshake.ErrUnknownNode) {
		return api.TrustRecord{}, api.Mark(err, api.ErrNotFound)
	}
	if err != nil {
		return api.TrustRecord{}, err
	}
	return trustRecord(rec), nil
}

func fingerprintIfPrivate(nw Network) string {
	if !nw.Private {
		return ""
	}
	return nw.Fingerprint
}

func strs[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}
