package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"peernode/protocols/handshake"
)

// newHost builds the libp2p host without listening: Start listens, one
// address at a time, so a failure names the address.
//
// Open network: TCP and QUIC. Private network: TCP only, wrapped by libp2p's
// pnet, so a node without the secret cannot complete even the transport
// handshake. Both: Noise and TLS, yamux, the connection manager and the
// resource manager. No NAT port mapping, no mDNS, no hole punching: nothing
// here sends traffic anywhere the operator did not point it.
func newHost(cfg *Config, key crypto.PrivKey, g *gater) (host.Host, error) {
	rm, err := NewResourceManager(cfg.Limits)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.ConnMgrLow, cfg.ConnMgrHigh, connmgr.WithGracePeriod(cfg.ConnMgrGrace))
	if err != nil {
		_ = rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.NoListenAddrs,
		libp2p.UserAgent("peernode/" + Version),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		// No SO_REUSEPORT: with it a second process could bind a port this
		// node already holds, and the kernel would split inbound
		// connections between the two. peernode does no hole punching that
		// would need reuse.
		libp2p.Transport(tcp.NewTCPTransport, tcpOptions(cfg)...),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.WithDialTimeout(cfg.DialTimeout),
		libp2p.ConnectionGater(g),
		libp2p.PrometheusRegisterer(withoutRcmgrMetrics{prometheus.DefaultRegisterer}),
	}
	if cfg.usesPnet() {
		opts = append(opts, libp2p.PrivateNetwork(cfg.Network.PSK))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		_ = cm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// withoutRcmgrMetrics registers libp2p's collectors with the registerer it
// wraps, except the resource manager's: their trace is off (see
// NewResourceManager), so they would only ever show zeros. The node's
// peernode_resources_* gauges take their place.
type withoutRcmgrMetrics struct{ prometheus.Registerer }

func (r withoutRcmgrMetrics) Register(c prometheus.Collector) error {
	if isRcmgrCollector(c) {
		return nil
	}
	return r.Registerer.Register(c)
}

func (r withoutRcmgrMetrics) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// isRcmgrCollector reports whether c describes libp2p_rcmgr_* metrics.
func isRcmgrCollector(c prometheus.Collector) bool {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	found := false
	for d := range ch {
		found = found || strings.Contains(d.String(), `fqName: "libp2p_rcmgr_`)
	}
	return found
}

func tcpOptions(cfg *Config) []any {
	opts := []any{tcp.DisableReuseport()}
	if cfg.TCPDialer != nil {
		opts = append(opts, tcp.WithDialerForAddr(cfg.TCPDialer))
	}
	return opts
}

// NewResourceManager builds the resource manager a node with limits l
// uses. It starts from libp2p's autoscaled defaults and raises (or
// lowers) the node-wide limits the config sets. Loopback connections are not
// limited per IP by libp2p, so local clusters are bound only by these.
func NewResourceManager(l Limits) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	partial := rcmgr.PartialLimitConfig{System: systemLimits(l)}
	if l.Conns > 0 {
		// Connections being upgraded, and their handshakes, count here
		// before they belong to a peer: a node asked to hold Conns
		// connections must be able to accept that many at once.
		partial.Transient = systemLimits(l)
		// Every connection runs a handshake at once: its service and its
		// protocol scope must admit one stream per connection.
		hs := rcmgr.ResourceLimits{
			StreamsInbound: rcmgr.LimitVal(l.Conns), StreamsOutbound: rcmgr.LimitVal(l.Conns), Streams: rcmgr.LimitVal(2 * l.Conns),
			Memory: rcmgr.LimitVal64(int64(2*l.Conns) * handshake.StreamMemory),
		}
		partial.Service = map[string]rcmgr.ResourceLimits{handshake.ServiceName: hs}
		partial.Protocol = map[protocol.ID]rcmgr.ResourceLimits{handshake.ID: hs}
	}
	limiter := rcmgr.NewFixedLimiter(partial.Build(scaling.AutoScale()))
	// Without libp2p's metrics of the resource manager: they come from a
	// trace of every reservation and release, each stamped with a formatted
	// time under one lock shared by the whole process, which cost 5 to 6 %
	// of a node's CPU in a storm of new connections (and more for verified
	// ones, whose handshake stream adds reservations). The node reads the
	// same usage and limits at scrape time instead (peernode_resources_*).
	rm, err := rcmgr.NewResourceManager(limiter, rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

func systemLimits(l Limits) rcmgr.ResourceLimits {
	var r rcmgr.ResourceLimits
	if l.Conns > 0 {
		r.Conns = rcmgr.LimitVal(l.Conns)
		r.ConnsInbound = rcmgr.LimitVal(l.Conns)
		r.ConnsOutbound = rcmgr.LimitVal(l.Conns)
	}
	if l.Streams > 0 {
		r.Streams = rcmgr.LimitVal(l.Streams)
		r.StreamsInbound = rcmgr.LimitVal(l.Streams)
		r.StreamsOutbound = rcmgr.LimitVal(l.Streams)
	}
	if l.Memory > 0 {
		r.Memory = rcmgr.LimitVal64(l.Memory)
	}
	if l.FD > 0 {
		r.FD = rcmgr.LimitVal(l.FD)
	}
	return r
}

// ListenError reports an address the node could not listen on.
type ListenError struct {
	Addr ma.Multiaddr
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// listen opens every usable listen address. Any failure is an error, except
// an IPv6 default address on a machine without IPv6, which is skipped.
func listen(h host.Host, cfg *Config) error {
	defaults := DefaultListenAddrs()
	isDefault := func(a ma.Multiaddr) bool {
		return slices.ContainsFunc(defaults, a.Equal)
	}
	for _, a := range cfg.ListenAddrs {
		if cfg.usesPnet() && isQUIC(a) {
			if !isDefault(a) {
				log.Warnw("not listening on a QUIC address: a private network uses TCP only (libp2p's pnet)", "addr", a)
			}
			continue
		}
		err := addListenAddr(h, a)
		if err == nil {
			continue
		}
		if isDefault(a) && isIP6(a) && noIPv6(err) {
			log.Infow("IPv6 unavailable, not listening on it", "addr", a, "err", err)
			continue
		}
		return &ListenError{Addr: a, Err: err}
	}
	if len(h.Network().ListenAddresses()) == 0 {
		return fmt.Errorf("no usable listen address among %v", cfg.ListenAddrs)
	}
	return nil
}

// addListenAddr listens on one address. The swarm's Listen flattens its
// errors into text, losing EADDRINUSE and the like; its AddListenAddr keeps
// them.
func addListenAddr(h host.Host, a ma.Multiaddr) error {
	if s, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error }); ok {
		return s.AddListenAddr(a)
	}
	return h.Network().Listen(a)
}

// noIPv6 recognises the errors of a machine without IPv6.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func isIP6(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_IP6)
	return err == nil
}
