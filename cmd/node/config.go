package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"peernode/discovery"
	"peernode/internal/atomicfile"
	"peernode/node"
	"peernode/protocols/handshake"
)

// configFileName is the daemon's settings file in the data directory. It is
// written on first start with the settings of that start; flags given later
// override it for one run without changing it.
const configFileName = "config.json"

// maxConfigBytes caps the config file: it is a short, hand-edited file.
const maxConfigBytes = 1 << 20

// settings is the config file's content, and what the daemon's flags set.
type settings struct {
	Name           string   `json:"name"`
	Listen         []string `json:"listen"`
	Bootstrap      []string `json:"bootstrap"`
	API            string   `json:"api"`
	APIAllowRemote bool     `json:"api_allow_remote"`
	// Metrics is a host:port serving /metrics without the API token;
	// empty serves metrics only on the API, behind the token.
	Metrics string `json:"metrics"`
	// SecretFile is where the network secret is read from; empty joins the
	// public network unless PEERNODE_SECRET or a flag gives a secret.
	SecretFile  string `json:"secret_file,omitempty"`
	ConnMgrLow  int    `json:"conn_mgr_low"`
	ConnMgrHigh int    `json:"conn_mgr_high"`
	MaxConns    int    `json:"max_conns"`
	MaxStreams  int    `json:"max_streams"`
	// Trust is the trust policy: open, allowlist or manual.
	Trust string `json:"trust"`
	// Role is full or client.
	Role string `json:"role"`
	// Justification is sent to operators who must approve this node.
	Justification string `json:"justification"`
	// Pnet wraps TCP in libp2p's pnet in a private network; false runs TCP
	// and QUIC and relies on the handshake alone.
	Pnet             bool     `json:"pnet"`
	HandshakeTimeout duration `json:"handshake_timeout"`
	// DuplicatePolicy is reconnect or strict.
	DuplicatePolicy string `json:"duplicate_policy"`
	// DHTMode is server, client or auto.
	DHTMode string `json:"dht_mode"`
	// AnnounceInterval and StaleAfter pace the member table.
	AnnounceInterval duration `json:"announce_interval"`
	StaleAfter       duration `json:"stale_after"`
	// MDNS finds members on the local network by multicast DNS.
	MDNS bool `json:"mdns"`
	// StorageMax caps the blob bytes stored here ("0": no quota, only the
	// rule never to fill the disk past 90 %); MaxBlobSize is the largest
	// blob stored or accepted.
	StorageMax  byteSize `json:"storage_max"`
	MaxBlobSize byteSize `json:"max_blob_size"`
}

// duration is a time.Duration written as text ("10s") in the config file.
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func defaultSettings() settings {
	d := node.DefaultConfig()
	s := settings{
		Name:        d.Name,
		Bootstrap:   []string{},
		API:         d.APIAddr,
		Metrics:     d.MetricsAddr,
		ConnMgrLow:  d.ConnMgrLow,
		ConnMgrHigh: d.ConnMgrHigh,
		MaxConns:    d.Limits.Conns,
		MaxStreams:  d.Limits.Streams,

		Trust:            d.Trust.String(),
		Role:             string(d.Role),
		Justification:    d.Justification,
		Pnet:             d.Pnet,
		HandshakeTimeout: duration(d.HandshakeTimeout),
		DuplicatePolicy:  string(d.DuplicatePolicy),
		DHTMode:          string(d.DHTMode),
		AnnounceInterval: duration(d.AnnounceInterval),
		StaleAfter:       duration(d.StaleAfter),
		MDNS:             d.MDNS,
		StorageMax:       byteSize(d.StorageMax),
		MaxBlobSize:      byteSize(d.MaxBlobSize),
	}
	for _, a := range d.ListenAddrs {
		s.Listen = append(s.Listen, a.String())
	}
	return s
}

// loadSettings reads the config file of dataDir. exists is false (and the
// defaults are returned) when there is none yet.
func loadSettings(dataDir string) (s settings, exists bool, err error) {
	path := filepath.Join(dataDir, configFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return defaultSettings(), false, nil
	}
	if err != nil {
		return s, false, usagef("config file %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return s, false, usagef("config file %s: %d bytes, too large", path, len(b))
	}
	s = defaultSettings()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, false, usagef("config file %s is not valid: %w (fix it, or move it away to start from defaults)", path, err)
	}
	return s, true, nil
}

func saveSettings(dataDir string, s settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return atomicfile.Write(filepath.Join(dataDir, configFileName), append(b, '\n'), 0o600)
}

// settingsFlags registers the daemon flags that override settings.
type settingsFlags struct {
	name, api, secretFile, secret string
	metrics                       string
	listen, bootstrap             stringList
	apiAllowRemote                bool
	connLow, connHigh, maxConns   int
	trust, role, justification    string
	duplicatePolicy               string
	pnet                          bool
	handshakeTimeout              time.Duration
	dhtMode                       string
	announceInterval, staleAfter  time.Duration
	mdns                          bool
	storageMax, maxBlobSize       byteSize
}

func (f *settingsFlags) register(fs *flag.FlagSet) {
	d := defaultSettings()
	fs.StringVar(&f.name, "name", d.Name, "human-readable name of this node")
	fs.Var(&f.listen, "listen", "multiaddr to listen on, repeatable (default TCP and QUIC on port 4001 of all interfaces)")
	fs.Var(&f.bootstrap, "bootstrap", "multiaddr of a peer to join through, ending in /p2p/<node ID>; repeatable")
	fs.StringVar(&f.api, "api", d.API, "host:port of the local control API")
	fs.BoolVar(&f.apiAllowRemote, "api-allow-remote", false, "allow a non-loopback --api address (the token travels in clear text)")
	fs.StringVar(&f.metrics, "metrics", d.Metrics, "host:port serving Prometheus /metrics without a token (unauthenticated: anyone who reaches it reads the metrics); empty: only on the API, with the token")
	fs.StringVar(&f.secretFile, "secret-file", "", "file holding the private network's secret (else $PEERNODE_SECRET; none joins the public network)")
	fs.StringVar(&f.secret, "secret", "", "the private network's secret (visible in the process list: prefer --secret-file)")
	fs.IntVar(&f.connLow, "conn-low", d.ConnMgrLow, "connection manager low water mark")
	fs.IntVar(&f.connHigh, "conn-high", d.ConnMgrHigh, "connection manager high water mark")
	fs.IntVar(&f.maxConns, "max-conns", d.MaxConns, "most connections the node holds (resource manager)")
	fs.StringVar(&f.trust, "trust", d.Trust, "trust policy: open (any member of the network), allowlist (only allowed node IDs) or manual (an operator approves each new node)")
	fs.StringVar(&f.role, "role", d.Role, "what this node offers: full (stores data for others) or client")
	fs.StringVar(&f.justification, "justification", d.Justification, "a note shown to operators who must approve this node by hand")
	fs.BoolVar(&f.pnet, "pnet", d.Pnet, "in a private network, use TCP with libp2p pnet; --pnet=false runs TCP and QUIC and relies on the handshake alone")
	fs.DurationVar(&f.handshakeTimeout, "handshake-timeout", time.Duration(d.HandshakeTimeout), "how long a new connection may take to complete the handshake")
	fs.StringVar(&f.duplicatePolicy, "duplicate-policy", d.DuplicatePolicy, "two processes with one node key: reconnect (the newest wins) or strict (the first stays)")
	fs.StringVar(&f.dhtMode, "dht-mode", d.DHTMode, "the private DHT's mode: server (answers queries), client or auto")
	fs.DurationVar(&f.announceInterval, "announce-interval", time.Duration(d.AnnounceInterval), "how often the node announces itself to the network (±10 % jitter)")
	fs.DurationVar(&f.staleAfter, "stale-after", time.Duration(d.StaleAfter), "how long a member may stay silent before it is pruned from the member table (at least two announce intervals)")
	fs.BoolVar(&f.mdns, "mdns", d.MDNS, "find members on the local network by multicast DNS; off by default")
	f.storageMax, f.maxBlobSize = d.StorageMax, d.MaxBlobSize
	fs.Var(&f.storageMax, "storage-max", "most blob bytes stored here, e.g. 50GiB or 200GB (0: no quota; the disk is never filled past 90 %)")
	fs.Var(&f.maxBlobSize, "max-blob-size", "largest blob stored or accepted, e.g. 8GiB")
}

// apply overrides s with the flags that were given.
func (f *settingsFlags) apply(s *settings, set map[string]bool) {
	if set["name"] {
		s.Name = f.name
	}
	if set["listen"] {
		s.Listen = f.listen
	}
	if set["bootstrap"] {
		s.Bootstrap = f.bootstrap
	}
	if set["api"] {
		s.API = f.api
	}
	if set["api-allow-remote"] {
		s.APIAllowRemote = f.apiAllowRemote
	}
	if set["metrics"] {
		s.Metrics = f.metrics
	}
	if set["secret-file"] {
		// Kept absolute: config.json remembers it for later runs, which
		// may start in another directory.
		s.SecretFile = f.secretFile
		if abs, err := filepath.Abs(f.secretFile); err == nil && f.secretFile != "" {
			s.SecretFile = abs
		}
	}
	if set["conn-low"] {
		s.ConnMgrLow = f.connLow
	}
	if set["conn-high"] {
		s.ConnMgrHigh = f.connHigh
	}
	if set["max-conns"] {
		s.MaxConns = f.maxConns
	}
	if set["trust"] {
		s.Trust = f.trust
	}
	if set["role"] {
		s.Role = f.role
	}
	if set["justification"] {
		s.Justification = f.justification
	}
	if set["pnet"] {
		s.Pnet = f.pnet
	}
	if set["handshake-timeout"] {
		s.HandshakeTimeout = duration(f.handshakeTimeout)
	}
	if set["duplicate-policy"] {
		s.DuplicatePolicy = f.duplicatePolicy
	}
	if set["dht-mode"] {
		s.DHTMode = f.dhtMode
	}
	if set["announce-interval"] {
		s.AnnounceInterval = duration(f.announceInterval)
	}
	if set["stale-after"] {
		s.StaleAfter = duration(f.staleAfter)
	}
	if set["mdns"] {
		s.MDNS = f.mdns
	}
	if set["storage-max"] {
		s.StorageMax = f.storageMax
	}
	if set["max-blob-size"] {
		s.MaxBlobSize = f.maxBlobSize
	}
}

// nodeConfig turns settings into a validated node.Config. secret, if not
// nil, overrides SecretFile. Nothing is written.
func nodeConfig(dataDir string, s settings, secret []byte) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Name = s.Name
	cfg.APIAddr = s.API
	cfg.APIAllowRemote = s.APIAllowRemote
	cfg.MetricsAddr = s.Metrics
	cfg.ConnMgrLow, cfg.ConnMgrHigh = s.ConnMgrLow, s.ConnMgrHigh
	cfg.Limits.Conns, cfg.Limits.Streams = s.MaxConns, s.MaxStreams
	cfg.ListenAddrs = cfg.ListenAddrs[:0]
	for _, l := range s.Listen {
		a, err := ma.NewMultiaddr(l)
		if err != nil {
			return cfg, usagef("listen address %q: %w", l, err)
		}
		cfg.ListenAddrs = append(cfg.ListenAddrs, a)
	}
	boot, err := node.ParseBootstrap(s.Bootstrap)
	if err != nil {
		return cfg, usageError{err}
	}
	cfg.Bootstrap = boot
	nw, err := networkFor(s, secret)
	if err != nil {
		return cfg, err
	}
	cfg.Network = nw
	if err := discoveryConfig(&cfg, s); err != nil {
		return cfg, err
	}
	if err := trustConfig(&cfg, s); err != nil {
		return cfg, err
	}
	if s.StorageMax < 0 {
		return cfg, usagef("--storage-max (config key storage_max) %s: must be 0 (no quota but the disk's) or more", s.StorageMax)
	}
	if s.MaxBlobSize <= 0 {
		return cfg, usagef("--max-blob-size (config key max_blob_size) %s: must be more than 0", s.MaxBlobSize)
	}
	cfg.StorageMax, cfg.MaxBlobSize = int64(s.StorageMax), int64(s.MaxBlobSize)
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// trustConfig maps the handshake and trust settings into cfg; a bad value
// is a usage error naming the flag and the config key.
func trustConfig(cfg *node.Config, s settings) error {
	policy, err := handshake.ParsePolicy(s.Trust)
	if err != nil {
		return usagef("--trust (config key trust): %w", err)
	}
	role, err := handshake.ParseRole(s.Role)
	if err != nil {
		return usagef("--role (config key role): %w", err)
	}
	dup := node.DuplicatePolicy(s.DuplicatePolicy)
	if dup != node.DuplicateReconnect && dup != node.DuplicateStrict {
		return usagef("--duplicate-policy (config key duplicate_policy) %q: want reconnect or strict", s.DuplicatePolicy)
	}
	if s.HandshakeTimeout <= 0 {
		return usagef("--handshake-timeout (config key handshake_timeout) %s: must be positive", time.Duration(s.HandshakeTimeout))
	}
	cfg.Trust, cfg.Role, cfg.DuplicatePolicy = policy, role, dup
	cfg.Justification = s.Justification
	cfg.Pnet = s.Pnet
	cfg.HandshakeTimeout = time.Duration(s.HandshakeTimeout)
	return nil
}

// discoveryConfig maps the discovery settings into cfg; a bad value is a
// usage error naming the flag and the config key.
func discoveryConfig(cfg *node.Config, s settings) error {
	mode, err := discovery.ParseDHTMode(s.DHTMode)
	if err != nil {
		return usagef("--dht-mode (config key dht_mode): %w", err)
	}
	ai, st := time.Duration(s.AnnounceInterval), time.Duration(s.StaleAfter)
	if ai <= 0 || st < 2*ai {
		return usagef("--announce-interval %s and --stale-after %s (config keys announce_interval, stale_after): need a positive interval and a threshold of at least two intervals", ai, st)
	}
	cfg.DHTMode, cfg.AnnounceInterval, cfg.StaleAfter = mode, ai, st
	cfg.MDNS = s.MDNS
	return nil
}

// networkFor derives the network from secret, else from the settings'
// secret file, else the public network.
func networkFor(s settings, secret []byte) (node.Network, error) {
	if secret == nil && s.SecretFile != "" {
		b, exposed, err := node.ReadSecretFile(s.SecretFile)
		if err != nil {
			if !filepath.IsAbs(s.SecretFile) {
				// --secret-file is stored absolute: this one was written
				// into config.json by hand, or by an older version.
				cwd, _ := os.Getwd()
				err = fmt.Errorf("%w\nThe path is the data directory's config.json secret_file; being relative, it is taken from the current directory (%s): "+
					"make it absolute there, or give --secret-file once more", err, cwd)
			}
			return node.Network{}, usageError{err}
		}
		if exposed {
			log.Warnw("the secret file can be read by other users; chmod 600 it", "file", s.SecretFile)
		}
		secret = b
	}
	if secret == nil {
		return node.PublicNetwork(), nil
	}
	nw, err := node.DeriveNetwork(secret)
	if err != nil {
		return node.Network{}, usageError{err}
	}
	return nw, nil
}
