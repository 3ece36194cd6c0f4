package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/api"
	"peernode/node"
)

// requestTimeout bounds a CLI call to the daemon.
const requestTimeout = 60 * time.Second

// daemonClient finds the daemon running on dataDir, or explains how to start
// one.
func daemonClient(dataDir string) (*api.Client, error) {
	c, err := api.ClientForDataDir(dataDir)
	if err != nil {
		return nil, noDaemonHint(err, dataDir)
	}
	return c, nil
}

func noDaemonHint(err error, dataDir string) error {
	if errors.Is(err, api.ErrNoDaemon) {
		return fmt.Errorf("%w\nStart one with: peernode daemon --data-dir %s", err, dataDir)
	}
	return err
}

func printJSON(env *cliEnv, v any) error {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runID(env *cliEnv, args []string) error {
	fs, common := newFlagSet(env, "id", idUsage)
	var secretFile, secretFlag string
	fs.StringVar(&secretFile, "secret-file", "", "network secret file, to show the network ID without a running daemon")
	fs.StringVar(&secretFlag, "secret", "", "network secret (visible in the process list: prefer --secret-file)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	info, err := daemonID(ctx, common.dataDir)
	if errors.Is(err, api.ErrNoDaemon) {
		info, err = offlineID(env, flagsSet(fs), common.dataDir, secretFile, secretFlag)
	}
	if err != nil {
		return err
	}
	if common.json {
		return printJSON(env, info)
	}
	fmt.Fprintf(env.stdout, "node ID:    %s\nname:       %s\nnetwork ID: %s\n", info.NodeID, info.Name, info.NetworkID)
	if info.SecretFingerprint != "" {
		fmt.Fprintf(env.stdout, "secret:     fingerprint %s\n", info.SecretFingerprint)
	}
	fmt.Fprintf(env.stdout, "version:    %s\n", info.Version)
	if len(info.Addrs) == 0 {
		fmt.Fprintln(env.stdout, "addresses:  none (the daemon is not running)")
	}
	for _, a := range info.Addrs {
		fmt.Fprintf(env.stdout, "address:    %s\n", a)
	}
	return nil
}

func daemonID(ctx context.Context, dataDir string) (api.IDInfo, error) {
	c, err := api.ClientForDataDir(dataDir)
	if err != nil {
		return api.IDInfo{}, err
	}
	return c.ID(ctx)
}

// offlineID builds the identity from the data directory alone. It creates
// the key if there is none yet, so an operator can learn a node's ID (for an
// allowlist, say) before its first start.
func offlineID(env *cliEnv, set map[string]bool, dataDir, secretFile, secretFlag string) (api.IDInfo, error) {
	s, _, err := loadSettings(dataDir)
	if err != nil {
		return api.IDInfo{}, err
	}
	if set["secret-file"] {
		s.SecretFile = secretFile
	}
	secret, err := resolveSecret(env, set, secretFlag)
	if err != nil {
		return api.IDInfo{}, err
	}
	nw, err := networkFor(s, secret)
	if err != nil {
		return api.IDInfo{}, err
	}
	key, created, err := node.LoadOrCreateIdentity(dataDir)
	if err != nil {
		return api.IDInfo{}, err
	}
	if created {
		fmt.Fprintf(env.stderr, "peernode: created a new identity in %s\n", dataDir)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return api.IDInfo{}, err
	}
	info := api.IDInfo{NodeID: id.String(), Name: s.Name, NetworkID: nw.ID, Private: nw.Private, Addrs: []string{}, Version: node.Version}
	if nw.Private {
		info.SecretFingerprint = nw.Fingerprint
	}
	return info, nil
}

const peersUsage = `peers [--explain NODE] [--json] [--data-dir DIR]

Lists the nodes the daemon is connected to, those that presented an identity
and went away, and the members of its member table it is not connected to
(heard of through announcements, peer exchange or a previous run): best
score first (among equal scores, verified first, then by node ID).

SCORE (0 to 1, higher is better) blends latency, reliability, freshness of
announcements and penalties for misbehaviour; a node never measured has the
priors' score. RTT is the smoothed round-trip time of handshakes and pings,
or the last handshake's before any; RELIABILITY the share of pings answered,
blended with a prior. LAST HEARD is when the member table last heard of a
node, BLOBS what its last announcement said it stores (- when no
announcement of it was heard, or it left the member table).

With --explain NODE, prints how NODE's score is made: one line per
component (its weight, value, contribution, how many samples it rests on
and when the last came) and the total.

Examples:
  peernode peers
  peernode peers --json
  peernode peers --explain 12D3KooW...`

// parsePeers reads the peers command's flags: the node to explain, if any,
// and the common flags.
func parsePeers(env *cliEnv, args []string) (explain string, common *commonFlags, err error) {
	fs, common := newFlagSet(env, "peers", peersUsage)
	fs.StringVar(&explain, "explain", "", "print how this node's score is made, instead of the list")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", common, err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return "", common, err
	}
	if flagsSet(fs)["explain"] {
		if err := checkNodeID(explain); err != nil {
			return "", common, fmt.Errorf("--explain: %w", err)
		}
	}
	return explain, common, nil
}

// checkNodeID returns a usage error unless s is a node ID.
func checkNodeID(s string) error {
	if _, err := peer.Decode(s); err != nil {
		return usagef("%q is not a node ID: node IDs look like 12D3KooW..., as 'peernode id' and 'peernode peers' print them", s)
	}
	return nil
}

func runPeers(env *cliEnv, args []string) error {
	explain, common, err := parsePeers(env, args)
	if err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if explain != "" {
		e, err := c.Score(ctx, explain)
		if err != nil {
			return noDaemonHint(err, common.dataDir)
		}
		if common.json {
			return printJSON(env, e)
		}
		return printExplanation(env, e)
	}
	peers, err := c.Peers(ctx)
	if err != nil {
		return noDaemonHint(err, common.dataDir)
	}
	if common.json {
		return printJSON(env, peers)
	}
	if len(peers) == 0 {
		fmt.Fprintln(env.stdout, "no peers: the daemon is connected to no node and knows no member")
		return nil
	}
	return printPeers(env, peers)
}

// printPeers prints the peers table, then the last failure of each peer that
// is not verified.
func printPeers(env *cliEnv, peers []api.PeerInfo) error {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tSCORE\tSTATUS\tCONNECTED\tSINCE\tLAST HEARD\tNAME\tROLE\tVERSION\tBLOBS\tRTT\tRELIABILITY")
	var failed []api.PeerInfo
	for _, p := range peers {
		since := "-"
		if !p.ConnectedSince.IsZero() {
			since = fmt.Sprintf("%s (%s)", ago(p.ConnectedSince), shortDirection(p.Direction))
		}
		blobs := "-" // no announcement heard: unknown, not none
		if !p.LastHeard.IsZero() {
			blobs = fmt.Sprint(p.BlobCount)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\n", p.NodeID, p.Score, p.Status, yesNo(p.Connected), since,
			agoOrDash(p.LastHeard), orDash(p.Name), orDash(p.Role), orDash(p.Version), blobs, peerRTT(p), p.Reliability)
		if p.LastFailure != nil && p.Status != api.PeerStatusVerified {
			failed = append(failed, p)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	fmt.Fprintln(env.stdout)
	tw = tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tLAST FAILURE\tWHEN\tMESSAGE")
	for _, p := range failed {
		f := p.LastFailure
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.NodeID, f.Reason, ago(f.At), orDash(f.Message))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// agoOrDash is ago(t), "-" for the zero time.
func agoOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return ago(t)
}

func shortDirection(d string) string {
	switch d {
	case "inbound":
		return "in"
	case "outbound":
		return "out"
	}
	return orDash(d)
}

// peerRTT is the smoothed RTT of p, or its last handshake's before any.
func peerRTT(p api.PeerInfo) string {
	if p.RTTMillis != nil {
		return rtt(*p.RTTMillis)
	}
	return rtt(p.HandshakeRTTMillis)
}

// rtt formats a round-trip time in milliseconds; "-" before any.
func rtt(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func runConnect(env *cliEnv, args []string) error {
	fs, common := newFlagSet(env, "connect", connectUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one multiaddr ending in /p2p/<node ID>"); err != nil {
		return err
	}
	if _, err := node.ParseBootstrap(pos); err != nil {
		return usageError{err}
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	res, err := c.Connect(ctx, pos[0])
	if err != nil {
		return noDaemonHint(err, common.dataDir)
	}
	if common.json {
		return printJSON(env, res)
	}
	if res.Status == "pending" {
		fmt.Fprintf(env.stdout, "connected to %s: pending, awaiting an operator's approval (peernode trust pending)\n", res.NodeID)
		return nil
	}
	fmt.Fprintf(env.stdout, "connected to %s (%s)\n", res.NodeID, res.Status)
	return nil
}

// versionInfo is `peernode version --json`.
type versionInfo struct {
	Version       string `json:"version"`
	Go            string `json:"go"`
	DaemonVersion string `json:"daemon_version,omitempty"`
}

func runVersion(env *cliEnv, args []string) error {
	fs, common := newFlagSet(env, "version", versionUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return err
	}
	v := versionInfo{Version: node.Version, Go: runtime.Version()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if info, err := daemonID(ctx, common.dataDir); err == nil {
		v.DaemonVersion = info.Version
	}
	if common.json {
		return printJSON(env, v)
	}
	fmt.Fprintf(env.stdout, "peernode %s (%s %s/%s)\n", v.Version, v.Go, runtime.GOOS, runtime.GOARCH)
	if v.DaemonVersion != "" {
		fmt.Fprintf(env.stdout, "running daemon: %s\n", v.DaemonVersion)
	}
	return nil
}

const idUsage = `id [--json] [--data-dir DIR] [--secret-file FILE]

Shows this node's identity: node ID, name, network ID and secret
fingerprint, addresses and version. Works without a running daemon: it reads
the key in the data directory, creating it if there is none yet.

Examples:
  peernode id
  peernode id --data-dir /srv/peernode --secret-file /etc/peernode/secret --json`

const connectUsage = `connect MULTIADDR [--json] [--data-dir DIR]

Asks the running daemon to connect to a peer and waits for the handshake:
prints verified, or pending while the peer's operator must approve this
node. MULTIADDR ends in /p2p/<node ID>, as another daemon's banner or
"peernode id" prints it.

Examples:
  peernode connect /ip4/192.0.2.7/tcp/4001/p2p/12D3KooWHpsuWafzyij5Gn3mmNnsuPwRARdi9ZaNhZmHMLG59x8D`

const versionUsage = `version [--json] [--data-dir DIR]

Shows the CLI's version and, when one is running, the daemon's.

Examples:
  peernode version
  peernode version --json`
