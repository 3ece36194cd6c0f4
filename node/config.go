package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/discovery"
	"peernode/protocols/handshake"
	"peernode/protocols/storage"
	"peernode/scoring"
)

// Config holds everything a node needs to start. Build one with
// DefaultConfig (or LocalTestConfig in tests), change the fields you need and
// pass it to New, which validates it once.
type Config struct {
	// DataDir holds the identity key, the API token and the API address file.
	// It is created (mode 0700) if missing. Default: ~/.peernode, or
	// $PEERNODE_PATH when set.
	DataDir string

	// Name is a human-readable label for this node, shown to operators. It is
	// not an identity: the node ID is. Default: the host name.
	Name string

	// ListenAddrs are the multiaddrs the node listens on. Default: TCP and
	// QUIC on port 4001 of every IPv4 and IPv6 interface. In a private network
	// QUIC addresses are skipped (with a warning unless they are the
	// defaults), because libp2p's pnet works over TCP only.
	ListenAddrs []ma.Multiaddr

	// Bootstrap peers are dialled at start and re-dialled, with back-off,
	// whenever the node has no peers at all. Each must name its peer ID.
	// Default: none.
	Bootstrap []peer.AddrInfo

	// Network is the network the node joins, derived from its secret.
	// Default: PublicNetwork(), the open default network.
	Network Network

	// APIAddr is the host:port of the local HTTP control API. Empty disables
	// the API. Default: 127.0.0.1:5080. Port 0 picks a free port; the address
	// actually used is written to the data directory for the CLI to find.
	APIAddr string

	// APIAllowRemote allows APIAddr to be something other than a loopback
	// address. The API is guarded by a bearer token but sent in clear text,
	// so this is off by default.
	APIAllowRemote bool

	// MetricsAddr, if set, is a host:port where GET /metrics is served
	// without a token, for a Prometheus scraper. It is unauthenticated:
	// anyone who reaches it reads the metrics (counts and scores, never a
	// node ID), so prefer a loopback or private address. Default empty:
	// metrics only on the control API, behind its token. Port 0 picks a
	// free port (Node.MetricsAddr tells which).
	MetricsAddr string

	// ConnMgrLow and ConnMgrHigh are the connection manager's water marks:
	// once more than ConnMgrHigh connections are open it trims the least
	// useful down to ConnMgrLow. Defaults 160 and 192, as libp2p's. Raise both
	// (and Limits.Conns) for a node that must hold thousands of connections.
	ConnMgrLow  int
	ConnMgrHigh int

	// ConnMgrGrace protects new connections from trimming for this long.
	// Default 20 s.
	ConnMgrGrace time.Duration

	// Limits bound what the libp2p resource manager lets the whole node use.
	Limits Limits

	// BootstrapBackoffMin and BootstrapBackoffMax bound the delay between
	// attempts to reach the bootstrap peers while the node has no peers. The
	// delay doubles after each failed round, with ±20 % jitter. Defaults 1 s
	// and 1 min.
	BootstrapBackoffMin time.Duration
	BootstrapBackoffMax time.Duration

	// DialTimeout bounds one attempt to connect to one peer. Default 15 s.
	DialTimeout time.Duration

	// Pnet, in a private network, wraps TCP in libp2p's private-network
	// protection so a stranger cannot even complete the transport
	// handshake. Default true. Off, the node also speaks QUIC and
	// membership is enforced by the handshake alone: strangers fail it and
	// are banned. Ignored on the public network.
	Pnet bool

	// Role is what this node offers: full (stores blobs for others) or
	// client. Default full.
	Role handshake.Role

	// StorageMax caps the bytes of blob data this node stores (its own and
	// others'); 0, the default, means no byte quota: only the disk rule
	// applies (never fill the disk past 90 %).
	StorageMax int64
	// MaxBlobSize is the largest blob stored or accepted. Default 8 GiB.
	MaxBlobSize int64
	// Storage bounds the storage protocol: transfers at once (default 16),
	// request timeout (30 s), slowest rate a deadline allows for (1 MiB/s)
	// and the idle time after which a stalled transfer is dropped and the
	// client fails over to another holder (15 s).
	Storage storage.Config
	// TCPDialer, if set, dials this node's outgoing TCP connections (for
	// the demo and tests, which wrap them to inject latency). Default nil:
	// libp2p's own dialer.
	TCPDialer tcp.DialerForAddr

	// ReprovideInterval is how often every stored blob's DHT provider
	// record is refreshed, well inside the records' 48 h lifetime.
	// Default 12 h.
	ReprovideInterval time.Duration

	// Trust is the trust policy: open (any member that proves itself),
	// allowlist (only allowed node IDs) or manual (unknown members wait
	// for an operator). Default open.
	Trust handshake.Policy

	// Justification is a note sent to operators who must approve this node
	// by hand. Default empty.
	Justification string

	// MaxPending bounds the manual-approval queue; PendingTTL is how long a
	// request waits. Defaults 64 and 1 h.
	MaxPending int
	PendingTTL time.Duration

	// HandshakeTimeout bounds a handshake; the listening side closes a
	// connection that has not finished one in this time. Default 10 s.
	HandshakeTimeout time.Duration

	// MaxClockSkew is the largest clock difference a handshake accepts.
	// Default 5 min.
	MaxClockSkew time.Duration

	// BanDuration is the first temporary ban of a node whose handshake
	// was rejected for a reason that would only repeat (wrong network,
	// not allowed, banned) or that broke the gate too often; each further
	// ban doubles, up to MaxBanDuration. Defaults 10 min and 6 h.
	BanDuration    time.Duration
	MaxBanDuration time.Duration

	// MaxViolations is how many streams a node may open before it is
	// verified, within ViolationWindow, before it is disconnected and
	// banned. Defaults 10 per minute.
	MaxViolations   int
	ViolationWindow time.Duration

	// DuplicatePolicy decides between two processes presenting the same
	// node key (a cloned data directory): reconnect (the newest session
	// wins, default) or strict (the first one stays, the second is
	// rejected).
	DuplicatePolicy DuplicatePolicy

	// DHTMode is the private DHT's mode: server (answers queries, the
	// default), client or auto.
	DHTMode discovery.DHTMode

	// RendezvousInterval is how often the node advertises itself on the
	// network's rendezvous namespace and, while it holds fewer than
	// ConnMgrLow connections, looks for other members there. Default 1 min.
	RendezvousInterval time.Duration

	// AnnounceInterval is how often the node publishes its signed
	// announcement (±10 % jitter). Default 30 s.
	AnnounceInterval time.Duration

	// StaleAfter is how long a member may stay silent before the member
	// table prunes it (at that moment, not at a sweep). Default 120 s; keep
	// it several announce intervals long.
	StaleAfter time.Duration

	// MDNS finds members on the local network by multicast DNS. Off by
	// default: a private cluster names its bootstrap peers.
	MDNS bool

	// Scoring tunes peer scores (weights, reference RTT, half-lives,
	// local-fault detection, retention): see scoring.Params.
	Scoring scoring.Params
	// Ping paces the ping rounds over Verified peers. Default every 15 s
	// (jittered), 5 s timeout.
	Ping scoring.PingConfig
	// ScoreInterval is how often scores are pushed to the connection
	// manager (the ProtectBest best connections protected, every verified
	// one tagged with its score) and GossipSub scores read back. Default
	// 10 s.
	ScoreInterval time.Duration
	// ProtectBest is how many of the best-scored verified connections the
	// connection manager never trims. Default 8.
	ProtectBest int
}

// DuplicatePolicy: see Config.DuplicatePolicy.
type DuplicatePolicy string

// Duplicate policies.
const (
	DuplicateReconnect DuplicatePolicy = "reconnect"
	DuplicateStrict    DuplicatePolicy = "strict"
)

// Limits are node-wide resource-manager limits. A zero field keeps libp2p's
// default, which scales with the machine's memory and file descriptors.
type Limits struct {
	// Conns caps open connections (inbound plus outbound). Default 1024;
	// ConnMgrHigh must not exceed it.
	Conns int
	// Streams caps open streams over all connections. Default 8192.
	Streams int
	// Memory caps the bytes that libp2p's components may reserve. Default:
	// libp2p's autoscaled value (1/8 of the machine's memory, 128 MiB-1 GiB).
	Memory int64
	// FD caps file descriptors used for connections. Default: libp2p's
	// autoscaled value (half the process limit).
	FD int
}

// Default values, exported for help text and the README.
const (
	DefaultAPIAddr             = "127.0.0.1:5080"
	DefaultPort                = 4001
	DefaultConnMgrLow          = 160
	DefaultConnMgrHigh         = 192
	DefaultConnMgrGrace        = 20 * time.Second
	DefaultConns               = 1024
	DefaultStreams             = 8192
	DefaultBootstrapBackoffMin = time.Second
	DefaultBootstrapBackoffMax = time.Minute
	DefaultDialTimeout         = 15 * time.Second
	DefaultBanDuration         = 10 * time.Minute
	DefaultMaxBanDuration      = 6 * time.Hour
	DefaultMaxViolations       = 10
	DefaultViolationWindow     = time.Minute
	DefaultRendezvousInterval  = time.Minute
	DefaultScoreInterval       = 10 * time.Second
	DefaultProtectBest         = 8
	DefaultMaxBlobSize         = 8 << 30
	DefaultReprovideInterval   = 12 * time.Hour
)

// DefaultListenAddrs returns TCP and QUIC on DefaultPort on all interfaces.
func DefaultListenAddrs() []ma.Multiaddr {
	return mustAddrs(
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
		fmt.Sprintf("/ip6/::/tcp/%d", DefaultPort),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", DefaultPort),
	)
}

// DefaultDataDir is $PEERNODE_PATH if set, else ~/.peernode.
func DefaultDataDir() string {
	if p := os.Getenv("PEERNODE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".peernode"
	}
	return filepath.Join(home, ".peernode")
}

// DefaultConfig returns the documented defaults: public network, listening on
// port 4001, API on 127.0.0.1:5080, data in DefaultDataDir.
func DefaultConfig() Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "peernode"
	}
	return Config{
		DataDir:             DefaultDataDir(),
		Name:                name,
		ListenAddrs:         DefaultListenAddrs(),
		Network:             PublicNetwork(),
		APIAddr:             DefaultAPIAddr,
		ConnMgrLow:          DefaultConnMgrLow,
		ConnMgrHigh:         DefaultConnMgrHigh,
		ConnMgrGrace:        DefaultConnMgrGrace,
		Limits:              Limits{Conns: DefaultConns, Streams: DefaultStreams},
		BootstrapBackoffMin: DefaultBootstrapBackoffMin,
		BootstrapBackoffMax: DefaultBootstrapBackoffMax,
		DialTimeout:         DefaultDialTimeout,
		Pnet:                true,
		Role:                handshake.RoleFull,
		Trust:               handshake.PolicyOpen,
		MaxPending:          handshake.DefaultMaxPending,
		PendingTTL:          handshake.DefaultPendingTTL,
		HandshakeTimeout:    handshake.DefaultTimeout,
		MaxClockSkew:        handshake.DefaultMaxClockSkew,
		BanDuration:         DefaultBanDuration,
		MaxBanDuration:      DefaultMaxBanDuration,
		MaxViolations:       DefaultMaxViolations,
		ViolationWindow:     DefaultViolationWindow,
		DuplicatePolicy:     DuplicateReconnect,
		DHTMode:             discovery.DHTServer,
		RendezvousInterval:  DefaultRendezvousInterval,
		AnnounceInterval:    discovery.DefaultAnnounceInterval,
		StaleAfter:          discovery.DefaultStaleAfter,
		Scoring:             scoring.DefaultParams(),
		Ping:                scoring.DefaultPingConfig(),
		ScoreInterval:       DefaultScoreInterval,
		ProtectBest:         DefaultProtectBest,
		MaxBlobSize:         DefaultMaxBlobSize,
		Storage:             storage.DefaultConfig(),
		ReprovideInterval:   DefaultReprovideInterval,
	}
}

// LocalTestConfig derives a configuration for tests: data in dataDir, TCP on
// an ephemeral 127.0.0.1 port, the API on an ephemeral loopback port, short
// back-off and dial timeouts.
func LocalTestConfig(dataDir string) Config {
	c := DefaultConfig()
	c.DataDir = dataDir
	c.Name = filepath.Base(dataDir)
	c.ListenAddrs = mustAddrs("/ip4/127.0.0.1/tcp/0")
	c.APIAddr = "127.0.0.1:0"
	c.BootstrapBackoffMin = 20 * time.Millisecond
	c.BootstrapBackoffMax = 500 * time.Millisecond
	c.DialTimeout = 5 * time.Second
	c.HandshakeTimeout = 5 * time.Second
	c.RendezvousInterval = 200 * time.Millisecond
	c.AnnounceInterval = 100 * time.Millisecond
	// Thirty announce intervals: a member is not pruned because a loaded
	// test machine delayed its announcements; tests of pruning set their own.
	c.StaleAfter = 3 * time.Second
	c.Scoring.FreshFor, c.Scoring.StaleAfter = 500*time.Millisecond, time.Second
	c.Ping.Interval, c.Ping.Timeout = 200*time.Millisecond, time.Second
	c.ScoreInterval = 100 * time.Millisecond
	return c
}

// ErrInvalidConfig is wrapped by every configuration error New returns.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks every field and the rules between them. New calls it;
// callers may call it first to report bad settings before anything is written.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.DataDir == "":
		return bad("data directory is empty")
	case len(c.ListenAddrs) == 0:
		return bad("no listen address")
	case c.Network.ID == "":
		return bad("no network: use PublicNetwork() or DeriveNetwork(secret)")
	case c.ConnMgrLow < 0 || c.ConnMgrHigh <= 0 || c.ConnMgrLow > c.ConnMgrHigh:
		return bad("connection manager water marks low=%d high=%d: need 0 <= low <= high, high > 0", c.ConnMgrLow, c.ConnMgrHigh)
	case c.Limits.Conns < 0 || c.Limits.Streams < 0 || c.Limits.Memory < 0 || c.Limits.FD < 0:
		return bad("resource limits must not be negative")
	case c.Limits.Conns > 0 && c.ConnMgrHigh > c.Limits.Conns:
		return bad("connection manager high water mark %d exceeds the connection limit %d", c.ConnMgrHigh, c.Limits.Conns)
	case c.BootstrapBackoffMin <= 0 || c.BootstrapBackoffMax < c.BootstrapBackoffMin:
		return bad("bootstrap back-off min=%s max=%s: need 0 < min <= max", c.BootstrapBackoffMin, c.BootstrapBackoffMax)
	case c.DialTimeout <= 0:
		return bad("dial timeout must be positive")
	case c.HandshakeTimeout <= 0 || c.MaxClockSkew <= 0:
		return bad("handshake timeout and clock skew must be positive")
	case c.BanDuration <= 0 || c.MaxBanDuration < c.BanDuration:
		return bad("ban durations first=%s max=%s: need 0 < first <= max", c.BanDuration, c.MaxBanDuration)
	case c.MaxViolations < 0 || c.ViolationWindow <= 0:
		return bad("violation limits must be positive")
	case c.MaxPending <= 0 || c.PendingTTL <= 0:
		return bad("pending queue size and time must be positive")
	case c.DuplicatePolicy != DuplicateReconnect && c.DuplicatePolicy != DuplicateStrict:
		return bad("duplicate policy %q: want reconnect or strict", c.DuplicatePolicy)
	case len(c.Justification) > handshake.MaxJustificationLen:
		return bad("justification longer than %d bytes", handshake.MaxJustificationLen)
	case len(c.Name) > handshake.MaxNameLen:
		return bad("name longer than %d bytes", handshake.MaxNameLen)
	case c.RendezvousInterval <= 0:
		return bad("rendezvous interval must be positive")
	case c.AnnounceInterval <= 0 || c.StaleAfter < 2*c.AnnounceInterval:
		return bad("announce interval %s and stale threshold %s: need a positive interval and a threshold of at least two intervals", c.AnnounceInterval, c.StaleAfter)
	case c.ScoreInterval <= 0 || c.ProtectBest < 0:
		return bad("score interval %s, protect best %d: need a positive interval and a count >= 0", c.ScoreInterval, c.ProtectBest)
	case c.StorageMax < 0 || c.MaxBlobSize <= 0:
		return bad("storage max %d bytes, max blob size %d bytes: need >= 0 (0: no quota) and > 0", c.StorageMax, c.MaxBlobSize)
	case c.ReprovideInterval <= 0:
		return bad("reprovide interval must be positive")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return bad("metrics address %q: %v", c.MetricsAddr, err)
		}
	}
	if err := c.Storage.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Scoring.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Ping.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if _, err := discovery.ParseDHTMode(string(c.DHTMode)); err != nil {
		return bad("%v", err)
	}
	if _, err := handshake.ParseRole(string(c.Role)); err != nil {
		return bad("%v", err)
	}
	if c.usesPnet() && len(usableListenAddrs(c.ListenAddrs, true)) == 0 {
		return bad("a private network listens on TCP only (libp2p's pnet does not work over QUIC), and no listen address is TCP")
	}
	for _, b := range c.Bootstrap {
		if b.ID == "" || len(b.Addrs) == 0 {
			return bad("bootstrap peer %v needs a peer ID and an address", b)
		}
	}
	return nil
}

// usesPnet reports whether the host wraps its transports in libp2p's pnet.
func (c *Config) usesPnet() bool { return c.Network.Private && c.Pnet }

// usableListenAddrs drops the addresses a private network cannot listen on.
func usableListenAddrs(addrs []ma.Multiaddr, private bool) []ma.Multiaddr {
	if !private {
		return addrs
	}
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		if !isQUIC(a) {
			out = append(out, a)
		}
	}
	return out
}

func isQUIC(a ma.Multiaddr) bool {
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_QUIC, ma.P_QUIC_V1, ma.P_WEBTRANSPORT:
			return true
		}
	}
	return false
}

func mustAddrs(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}
