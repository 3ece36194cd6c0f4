package main

// The harness of the end-to-end tests: running the binary, daemons and
// waiting for conditions.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// buildTimeout bounds building the binary: a cold build cache compiles
	// all of libp2p.
	buildTimeout = 5 * time.Minute
	// execTimeout bounds one short CLI command.
	execTimeout = 30 * time.Second
	// daemonLifetime is a backstop for a daemon the test forgets to stop: no
	// test runs nearly this long.
	daemonLifetime = 2 * time.Minute
	// readyTimeout bounds a daemon's start, generous for a loaded 2-core
	// machine running the race detector.
	readyTimeout = 20 * time.Second
	// stopTimeout is how fast a daemon must exit after SIGTERM.
	stopTimeout = 5 * time.Second
	// waitTimeout bounds waiting for a condition between running daemons.
	waitTimeout = 20 * time.Second
	// pollInterval is how often a waited-for condition is checked.
	pollInterval = 50 * time.Millisecond
)

// processEnv is the test's environment without peernode's own variables,
// plus extra ("KEY=value").
func processEnv(extra []string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PEERNODE_")
	})
	return append(env, extra...)
}

// result is a finished command.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("peernode %s\nexit status %d\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// exitCode turns cmd.Wait's error into an exit status; -1 means killed by
// a signal.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("running peernode: %v", err)
	return 0
}

// peernode runs the binary with args and waits for it to exit.
func peernode(t *testing.T, args ...string) result {
	t.Helper()
	return peernodeEnv(t, nil, args...)
}

// peernodeEnv is peernode with extra environment variables.
func peernodeEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, peernodeBin, args...)
	cmd.Env = processEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "peernode %s did not finish within %s", strings.Join(args, " "), execTimeout)
	return result{args: args, code: exitCode(t, err), stdout: stdout.String(), stderr: stderr.String()}
}

// decodeJSON decodes a successful command's stdout into v.
func decodeJSON(t *testing.T, r result, v any) {
	t.Helper()
	require.Equal(t, 0, r.code, "%s", r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), v), "%s", r)
}

// requireKeys checks that a JSON object has every key, whatever its value.
func requireKeys(t *testing.T, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.Contains(t, obj, k, "JSON object %v lacks %q", obj, k)
	}
}

// idJSON is `peernode id --json`.
type idJSON struct {
	NodeID            string   `json:"node_id"`
	Name              string   `json:"name"`
	NetworkID         string   `json:"network_id"`
	Private           bool     `json:"private"`
	SecretFingerprint string   `json:"secret_fingerprint"`
	Addrs             []string `json:"addrs"`
	Version           string   `json:"version"`
}

// peerJSON is one entry of `peernode peers --json`.
type peerJSON struct {
	NodeID         string       `json:"node_id"`
	Addrs          []string     `json:"addrs"`
	Direction      string       `json:"direction"`
	ConnectedSince string       `json:"connected_since"`
	Status         string       `json:"status"`
	Name           string       `json:"name"`
	Role           string       `json:"role"`
	Version        string       `json:"version"`
	HandshakeRTTMs float64      `json:"handshake_rtt_ms"`
	LastFailure    *failureJSON `json:"last_failure"`
	Connected      bool         `json:"connected"`
	LastHeard      string       `json:"last_heard"`
	BlobCount      uint64       `json:"blob_count"`
	Score          float64      `json:"score"`
	RTTMs          *float64     `json:"rtt_ms"`
	Reliability    float64      `json:"reliability"`
}

// failureJSON is a peer's last_failure.
type failureJSON struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	At      string `json:"at"`
}

// connected reports whether the entry has a live connection.
func (p peerJSON) connected() bool { return p.Direction != "" }

func (p peerJSON) String() string {
	s := fmt.Sprintf("%s(%s %s", p.Name, p.NodeID, p.Status)
	if p.LastFailure != nil {
		s += " last failure " + p.LastFailure.Reason + ": " + p.LastFailure.Message
	}
	return s + ")"
}

// peerStatuses are the values of a peer's status.
var peerStatuses = []string{"new", "handshaking", "pending", "verified", "closing", "error", "disconnected"}

// nodeID runs `peernode id --json` on dataDir and checks the fields every
// answer has.
func nodeID(t *testing.T, dataDir string) idJSON {
	t.Helper()
	r := peernode(t, "id", "--json", "--data-dir", dataDir)
	var obj map[string]any
	decodeJSON(t, r, &obj)
	requireKeys(t, obj, "node_id", "name", "network_id", "private", "addrs", "version")
	var id idJSON
	decodeJSON(t, r, &id)
	require.NotEmpty(t, id.NodeID, "%s", r)
	require.NotEmpty(t, id.NetworkID, "%s", r)
	require.NotEmpty(t, id.Version, "%s", r)
	require.NotNil(t, id.Addrs, "addrs must be a list, even empty: %s", r)
	return id
}

// peers runs `peernode peers --json` on dataDir and checks every entry.
func peers(t *testing.T, dataDir string) []peerJSON {
	t.Helper()
	r := peernode(t, "peers", "--json", "--data-dir", dataDir)
	var objs []map[string]any
	decodeJSON(t, r, &objs)
	var ps []peerJSON
	decodeJSON(t, r, &ps)
	for i, p := range ps {
		requireKeys(t, objs[i], "node_id", "addrs", "status", "name", "role", "version", "handshake_rtt_ms", "connected", "blob_count",
			"score", "reliability")
		require.True(t, p.Score >= 0 && p.Score <= 1, "score of %s out of [0, 1]: %s", p.NodeID, r)
		require.True(t, p.Reliability >= 0 && p.Reliability <= 1, "reliability of %s out of [0, 1]: %s", p.NodeID, r)
		if p.RTTMs != nil {
			require.Positive(t, *p.RTTMs, "rtt_ms of %s is absent or positive: %s", p.NodeID, r)
		}
		if i > 0 {
			require.LessOrEqual(t, p.Score, ps[i-1].Score, "peers are sorted by score, best first: %s", r)
		}
		require.NotEmpty(t, p.NodeID, "%s", r)
		require.NotNil(t, p.Addrs, "addrs must be a list, even empty: %s", r)
		require.Contains(t, peerStatuses, p.Status, "%s", r)
		if p.Status == "verified" || p.Status == "pending" {
			require.True(t, p.connected(), "a %s peer has a live connection: %s", p.Status, r)
		}
		if p.connected() {
			requireKeys(t, objs[i], "direction", "connected_since")
			require.NotEmpty(t, p.Addrs, "%s", r)
			require.Contains(t, []string{"inbound", "outbound"}, p.Direction, "%s", r)
			_, err := time.Parse(time.RFC3339, p.ConnectedSince)
			require.NoError(t, err, "connected_since of %s: %s", p.NodeID, r)
			require.True(t, p.Connected, "a peer with a live connection is connected: %s", r)
		} else {
			require.NotContains(t, objs[i], "connected_since", "no live connection: %s", r)
		}
		if p.LastHeard != "" {
			_, err := time.Parse(time.RFC3339, p.LastHeard)
			require.NoError(t, err, "last_heard of %s: %s", p.NodeID, r)
		}
		if p.LastFailure != nil {
			require.NotEmpty(t, p.LastFailure.Reason, "%s", r)
			_, err := time.Parse(time.RFC3339, p.LastFailure.At)
			require.NoError(t, err, "last_failure.at of %s: %s", p.NodeID, r)
		}
	}
	return ps
}

// trustRecordJSON is one record of `peernode trust list --json`, and the
// answer of a trust action with --json.
type trustRecordJSON struct {
	NodeID    string `json:"node_id"`
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason"`
	Created   string `json:"created"`
	Expires   string `json:"expires"`
}

// trustListJSON is `peernode trust list --json`.
type trustListJSON struct {
	Policy  string            `json:"policy"`
	Records []trustRecordJSON `json:"records"`
}

func (l trustListJSON) record(id string) (trustRecordJSON, bool) {
	i := slices.IndexFunc(l.Records, func(r trustRecordJSON) bool { return r.NodeID == id })
	if i < 0 {
		return trustRecordJSON{}, false
	}
	return l.Records[i], true
}

// pendingJSON is one entry of `peernode trust pending --json`.
type pendingJSON struct {
	NodeID        string   `json:"node_id"`
	Name          string   `json:"name"`
	Role          string   `json:"role"`
	Version       string   `json:"version"`
	Addrs         []string `json:"addrs"`
	Justification string   `json:"justification"`
	Since         string   `json:"since"`
	Expires       string   `json:"expires"`
}

// trustListOf runs `peernode trust list --json` on dataDir and checks its
// shape.
func trustListOf(t *testing.T, dataDir string) trustListJSON {
	t.Helper()
	r := peernode(t, "trust", "list", "--json", "--data-dir", dataDir)
	var obj struct {
		Policy  string           `json:"policy"`
		Records []map[string]any `json:"records"`
	}
	decodeJSON(t, r, &obj)
	require.Contains(t, []string{"open", "allowlist", "manual"}, obj.Policy, "%s", r)
	require.NotNil(t, obj.Records, "records must be a list, even empty: %s", r)
	for _, rec := range obj.Records {
		requireKeys(t, rec, "node_id", "public_key", "name", "decision", "reason", "created")
	}
	var l trustListJSON
	decodeJSON(t, r, &l)
	for _, rec := range l.Records {
		require.Contains(t, []string{"allow", "deny"}, rec.Decision, "%s", r)
	}
	return l
}

// pendingOf runs `peernode trust pending --json` on dataDir and checks
// every entry.
func pendingOf(t *testing.T, dataDir string) []pendingJSON {
	t.Helper()
	r := peernode(t, "trust", "pending", "--json", "--data-dir", dataDir)
	var objs []map[string]any
	decodeJSON(t, r, &objs)
	require.NotNil(t, objs, "pending must be a list, even empty: %s", r)
	for _, o := range objs {
		requireKeys(t, o, "node_id", "name", "role", "version", "addrs", "justification", "since", "expires")
	}
	var ps []pendingJSON
	decodeJSON(t, r, &ps)
	return ps
}

func findPending(ps []pendingJSON, id string) (pendingJSON, bool) {
	i := slices.IndexFunc(ps, func(p pendingJSON) bool { return p.NodeID == id })
	if i < 0 {
		return pendingJSON{}, false
	}
	return ps[i], true
}

// waitPeer waits until dataDir's daemon lists id and cond holds for its
// entry, and returns the entry.
func waitPeer(t *testing.T, dataDir, id string, what string, cond func(p peerJSON) bool) peerJSON {
	t.Helper()
	var got peerJSON
	waitUntil(t, waitTimeout, func() (bool, string) {
		ps := peers(t, dataDir)
		p, ok := findPeer(ps, id)
		got = p
		return ok && cond(p), fmt.Sprintf("peers of %s: want %s %s; have %v", dataDir, id, what, ps)
	})
	return got
}

// isStatus is a waitPeer condition.
func isStatus(status string) func(peerJSON) bool {
	return func(p peerJSON) bool { return p.Status == status }
}

func findPeer(ps []peerJSON, id string) (peerJSON, bool) {
	i := slices.IndexFunc(ps, func(p peerJSON) bool { return p.NodeID == id })
	if i < 0 {
		return peerJSON{}, false
	}
	return ps[i], true
}

// waitUntil checks cond every pollInterval until it holds, and fails the
// test with cond's last explanation if it still does not after timeout.
func waitUntil(t *testing.T, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not so after %s: %s", timeout, why)
		}
		<-tick.C
	}
}

// syncBuffer is a bytes.Buffer a running process writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is a `peernode daemon` process.
type daemon struct {
	t              *testing.T
	name, dir      string
	args           []string
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stdout, stderr syncBuffer
	exited         chan struct{} // closed once the process has exited
	waitErr        error         // cmd.Wait's error, set before exited closes

	// From the banner, once ready.
	id    string
	addrs []string // full multiaddrs, each ending in /p2p/<id>

	stopOnce sync.Once
}

// launchDaemon starts `peernode daemon` on dir with ephemeral 127.0.0.1
// addresses unless extra sets --listen or --api, and does not wait.
func launchDaemon(t *testing.T, env []string, dir, name string, extra ...string) *daemon {
	t.Helper()
	args := []string{"daemon", "--data-dir", dir, "--name", name}
	if !slices.Contains(extra, "--listen") {
		args = append(args, "--listen", "/ip4/127.0.0.1/tcp/0")
	}
	if !slices.Contains(extra, "--api") {
		args = append(args, "--api", "127.0.0.1:0")
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), daemonLifetime)
	d := &daemon{t: t, name: name, dir: dir, args: args, cancel: cancel, exited: make(chan struct{})}
	d.cmd = exec.CommandContext(ctx, peernodeBin, args...)
	d.cmd.Env = processEnv(env)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	d.cmd.WaitDelay = stopTimeout
	if err := d.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start peernode %s: %v", strings.Join(args, " "), err)
	}
	t.Cleanup(cancel) // kills the daemon if nothing stopped it
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d
}

// startDaemon starts a daemon, waits until it is ready and stops it, checking
// a clean exit, when the test ends.
func startDaemon(t *testing.T, dir, name string, extra ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, nil, dir, name, extra...)
}

// startDaemonEnv is startDaemon with extra environment variables.
func startDaemonEnv(t *testing.T, env []string, dir, name string, extra ...string) *daemon {
	t.Helper()
	d := launchDaemon(t, env, dir, name, extra...)
	t.Cleanup(d.stop)
	if !d.waitReadyOrExit() {
		t.Fatalf("daemon %s exited before it was ready:\n%s", name, d.result())
	}
	d.parseBanner()
	require.FileExists(t, filepath.Join(dir, "api.addr"), "a running daemon records its API address")
	return d
}

// daemonFails runs a daemon that must not start and returns how it exited.
// If it starts after all, it is stopped and the test fails.
func daemonFails(t *testing.T, env []string, dir, name string, extra ...string) result {
	t.Helper()
	d := launchDaemon(t, env, dir, name, extra...)
	if d.waitReadyOrExit() {
		d.stop()
		t.Fatalf("daemon %s started, but should have failed:\n%s", name, d.result())
	}
	return d.result()
}

func (d *daemon) ready() bool {
	return strings.Contains("\n"+d.stdout.String(), "\nready\n")
}

// waitReadyOrExit waits until the daemon prints "ready" (true) or exits
// (false), failing the test after readyTimeout.
func (d *daemon) waitReadyOrExit() bool {
	d.t.Helper()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if d.ready() {
			return true
		}
		select {
		case <-d.exited:
			return d.ready()
		case <-deadline.C:
			d.stop()
			d.t.Fatalf("daemon %s neither ready nor exited after %s:\n%s", d.name, readyTimeout, d.result())
		case <-tick.C:
		}
	}
}

// result is the daemon's exit status and output; call it once it exited.
func (d *daemon) result() result {
	d.t.Helper()
	<-d.exited
	return result{args: d.args, code: exitCode(d.t, d.waitErr), stdout: d.stdout.String(), stderr: d.stderr.String()}
}

// parseBanner reads the node ID and addresses printed at start.
func (d *daemon) parseBanner() {
	d.t.Helper()
	out := d.stdout.String()
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if v, ok := strings.CutPrefix(line, "node ID:"); ok {
			d.id = strings.TrimSpace(v)
		}
		if strings.HasPrefix(line, "  /ip4/127.0.0.1/tcp/") {
			d.addrs = append(d.addrs, strings.TrimSpace(line))
		}
	}
	require.NotEmpty(d.t, d.id, "no node ID in the banner:\n%s", out)
	require.NotEmpty(d.t, d.addrs, "no /ip4/127.0.0.1/tcp address in the banner:\n%s", out)
	for _, a := range d.addrs {
		require.True(d.t, strings.HasSuffix(a, "/p2p/"+d.id), "address %s does not end in /p2p/%s", a, d.id)
	}
}

// addr is the daemon's first TCP address, ending in /p2p/<id>.
func (d *daemon) addr() string { return d.addrs[0] }

// listenAddr is addr without /p2p/<id>: what the daemon listens on.
func (d *daemon) listenAddr() string { return strings.TrimSuffix(d.addr(), "/p2p/"+d.id) }

// apiAddr is the host:port the daemon's API listens on, from api.addr.
func (d *daemon) apiAddr() string {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "api.addr"))
	require.NoError(d.t, err, "daemon %s is running, so api.addr must exist", d.name)
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM and checks that the daemon exits cleanly within
// stopTimeout: status 0, "stopped" printed, api.addr removed. Later calls do
// nothing.
func (d *daemon) stop() {
	d.t.Helper()
	d.stopOnce.Do(func() {
		defer d.cancel()
		select {
		case <-d.exited:
			d.t.Errorf("daemon %s exited before it was stopped:\n%s", d.name, d.result())
			return
		default:
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			d.t.Errorf("SIGTERM daemon %s: %v", d.name, err)
		}
		select {
		case <-d.exited:
		case <-time.After(stopTimeout):
			_ = d.cmd.Process.Kill()
			d.t.Errorf("daemon %s did not exit within %s of SIGTERM:\n%s", d.name, stopTimeout, d.result())
			return
		}
		r := d.result()
		if !d.ready() { // it was meant to fail; only make sure it is gone
			return
		}
		if r.code != 0 || !strings.Contains(r.stdout, "\nstopped\n") {
			d.t.Errorf("daemon %s did not stop cleanly:\n%s", d.name, r)
		}
		if _, err := os.Stat(filepath.Join(d.dir, "api.addr")); !errors.Is(err, fs.ErrNotExist) {
			d.t.Errorf("daemon %s left api.addr behind (stat: %v)", d.name, err)
		}
	})
}

// writeSecretFile writes a 0600 secret file and returns its path.
func writeSecretFile(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), 0o600))
	return path
}

// fileState is a file's content and mode.
type fileState struct {
	data []byte
	mode fs.FileMode
}

// snapshotDir reads every file of dir (of a subdirectory, only that it
// exists).
func snapshotDir(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	snap := map[string]fileState{}
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		var data []byte
		if info.Mode().IsRegular() {
			data, err = os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
		}
		snap[e.Name()] = fileState{data: data, mode: info.Mode()}
	}
	return snap
}

// restoreDir creates dir with the files of snap.
func restoreDir(t *testing.T, dir string, snap map[string]fileState) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	for name, f := range snap {
		path := filepath.Join(dir, name)
		if f.mode.IsDir() {
			require.NoError(t, os.MkdirAll(path, f.mode.Perm()))
			require.NoError(t, os.Chmod(path, f.mode.Perm()))
			continue
		}
		require.NoError(t, os.WriteFile(path, f.data, f.mode.Perm()))
		require.NoError(t, os.Chmod(path, f.mode.Perm())) // despite the umask
	}
}
