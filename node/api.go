package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/api"
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

func (b backend) Peers() []api.PeerInfo {
	nw := b.n.host.Network()
	peers := nw.Peers()
	out := make([]api.PeerInfo, 0, len(peers))
	for _, p := range peers {
		conns := nw.ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		out = append(out, peerInfo(p, conns))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

func (b backend) Connect(ctx context.Context, addr string) (api.ConnectResult, error) {
	infos, err := ParseBootstrap([]string{addr})
	if err != nil {
		return api.ConnectResult{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if err := b.n.Connect(ctx, infos[0]); err != nil {
		return api.ConnectResult{}, err
	}
	return api.ConnectResult{NodeID: infos[0].ID.String()}, nil
}

func peerInfo(p peer.ID, conns []network.Conn) api.PeerInfo {
	oldest := conns[0]
	addrs := make([]string, 0, len(conns))
	for _, c := range conns {
		if c.Stat().Opened.Before(oldest.Stat().Opened) {
			oldest = c
		}
		addrs = append(addrs, c.RemoteMultiaddr().String()+"/p2p/"+p.String())
	}
	return api.PeerInfo{
		NodeID:         p.String(),
		Addrs:          addrs,
		Direction:      strings.ToLower(oldest.Stat().Direction.String()),
		ConnectedSince: oldest.Stat().Opened.UTC(),
	}
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
