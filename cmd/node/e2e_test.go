package main

// End-to-end tests: they build the real binary once and run it as processes,
// daemons included, on 127.0.0.1 with ephemeral ports and temp data dirs.
// The harness is in e2e_helpers_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// peernodeBin is the binary TestMain builds.
var peernodeBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "peernode-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	peernodeBin = filepath.Join(dir, "peernode")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", peernodeBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build peernode/cmd/node: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func TestTwoDaemonsBootstrapAndConnect(t *testing.T) {
	t.Parallel()
	a := startDaemon(t, t.TempDir(), "alpha")
	b := startDaemon(t, t.TempDir(), "beta", "--bootstrap", a.addr())

	var inA peerJSON
	waitUntil(t, waitTimeout, func() (bool, string) {
		ps := peers(t, a.dir)
		p, ok := findPeer(ps, b.id)
		inA = p
		return ok, fmt.Sprintf("alpha's peers %v lack beta %s", ps, b.id)
	})
	require.Equal(t, "inbound", inA.Direction, "beta dialled alpha")
	inB, ok := findPeer(peers(t, b.dir), a.id)
	require.True(t, ok, "beta does not list alpha")
	require.Equal(t, "outbound", inB.Direction, "beta dialled alpha")

	ids := map[string]idJSON{}
	for _, d := range []*daemon{a, b} {
		id := nodeID(t, d.dir)
		require.Equal(t, d.id, id.NodeID)
		require.Equal(t, d.name, id.Name)
		require.False(t, id.Private)
		require.Empty(t, id.SecretFingerprint)
		require.NotEmpty(t, id.Addrs, "%s is running", d.name)
		for _, addr := range id.Addrs {
			require.True(t, strings.HasSuffix(addr, "/p2p/"+d.id), "%s: address %s", d.name, addr)
		}
		ids[d.name] = id
	}
	require.Equal(t, ids["alpha"].NetworkID, ids["beta"].NetworkID)

	r := peernode(t, "connect", b.addr(), "--json", "--data-dir", a.dir)
	var res map[string]any
	decodeJSON(t, r, &res)
	require.Equal(t, b.id, res["node_id"], "%s", r)
}

func TestPrivateNetwork(t *testing.T) {
	t.Parallel()
	const (
		secret      = "e2e-shared-secret-7f3a9c2e51d04b86"
		otherSecret = "e2e-other-secret-0c8e1d6b2a9f4e73"
	)
	var (
		a, b, c *daemon
		outputs []result
	)
	// Registered first, so it runs after the daemons have stopped and sees
	// everything they printed.
	t.Cleanup(func() {
		for _, d := range []*daemon{a, b, c} {
			if d != nil {
				outputs = append(outputs, result{args: d.args, stdout: d.stdout.String(), stderr: d.stderr.String()})
			}
		}
		for _, r := range outputs {
			for _, s := range []string{secret, otherSecret} {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("a secret appears in the output of:\n%s", r)
				}
			}
		}
	})
	run := func(args ...string) result {
		r := peernode(t, args...)
		outputs = append(outputs, r)
		return r
	}

	secretFile := writeSecretFile(t, secret)
	a = startDaemon(t, t.TempDir(), "alpha", "--secret-file", secretFile)
	b = startDaemon(t, t.TempDir(), "beta", "--secret-file", secretFile, "--bootstrap", a.addr())
	c = startDaemonEnv(t, []string{"PEERNODE_SECRET=" + otherSecret}, t.TempDir(), "gamma")

	waitUntil(t, waitTimeout, func() (bool, string) {
		ps := peers(t, a.dir)
		_, ok := findPeer(ps, b.id)
		return ok, fmt.Sprintf("alpha's peers %v lack beta %s", ps, b.id)
	})

	r := run("connect", a.addr(), "--json", "--data-dir", c.dir)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "peernode connect:", "%s", r)
	require.Contains(t, r.stderr, a.id, "the error names the peer: %s", r)
	_, ok := findPeer(peers(t, c.dir), a.id)
	require.False(t, ok, "gamma, with another secret, is connected to alpha")
	_, ok = findPeer(peers(t, a.dir), c.id)
	require.False(t, ok, "alpha is connected to gamma, which has another secret")

	idA, idB, idC := nodeID(t, a.dir), nodeID(t, b.dir), nodeID(t, c.dir)
	for _, id := range []idJSON{idA, idB, idC} {
		require.True(t, id.Private, "%s", id.Name)
		require.NotEmpty(t, id.SecretFingerprint, "%s", id.Name)
	}
	require.Equal(t, idA.SecretFingerprint, idB.SecretFingerprint)
	require.Equal(t, idA.NetworkID, idB.NetworkID)
	require.NotEqual(t, idA.SecretFingerprint, idC.SecretFingerprint)
	require.NotEqual(t, idA.NetworkID, idC.NetworkID)

	// The secret from the environment is not saved in the config either.
	cfg, err := os.ReadFile(filepath.Join(c.dir, "config.json"))
	require.NoError(t, err)
	require.NotContains(t, string(cfg), otherSecret)
}

func TestDaemonRejectsBadInput(t *testing.T) {
	t.Parallel()
	// A data directory that has served a daemon: config.json, identity.key,
	// api.token, daemon.lock.
	used := t.TempDir()
	d := startDaemon(t, used, "used")
	d.stop()
	existing := snapshotDir(t, used)
	require.Contains(t, existing, "config.json")
	require.Contains(t, existing, "identity.key")

	secretFile := writeSecretFile(t, "e2e-valid-secret-5d2c8b1e")
	missing := filepath.Join(t.TempDir(), "missing")
	notFile := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"bootstrap not a multiaddr", []string{"--bootstrap", "not-a-multiaddr"}, []string{"bootstrap", "/p2p/"}},
		{"bootstrap without p2p", []string{"--bootstrap", "/ip4/127.0.0.1/tcp/1234"}, []string{"bootstrap", "/p2p/"}},
		{"unknown flag", []string{"--bogus"}, []string{"bogus"}},
		{"missing secret file", []string{"--secret-file", missing}, []string{"secret file", missing}},
		{"secret file is a directory", []string{"--secret-file", notFile}, []string{"secret file", notFile, "not a regular file"}},
		{"short secret", []string{"--secret", "too-short"}, []string{"secret", "too short"}},
		{"secret file and secret", []string{"--secret-file", secretFile, "--secret", "e2e-valid-secret-5d2c8b1e"}, []string{"--secret-file", "--secret", "not both"}},
		{"unknown trust policy", []string{"--trust", "everyone"}, []string{"--trust", "everyone", "open, allowlist or manual"}},
		{"unknown role", []string{"--role", "server"}, []string{"--role", "full or client"}},
		{"zero handshake timeout", []string{"--handshake-timeout", "0s"}, []string{"--handshake-timeout", "positive"}},
		{"unknown duplicate policy", []string{"--duplicate-policy", "newest"}, []string{"--duplicate-policy", "reconnect or strict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check := func(r result) {
				t.Helper()
				require.Equal(t, 2, r.code, "%s", r)
				for _, w := range tt.want {
					require.Contains(t, r.stderr, w, "%s", r)
				}
			}

			fresh := filepath.Join(t.TempDir(), "data")
			check(daemonFails(t, nil, fresh, "fresh", tt.args...))
			require.NoDirExists(t, fresh, "bad input must not create the data directory")

			dir := filepath.Join(t.TempDir(), "data")
			restoreDir(t, dir, existing)
			check(daemonFails(t, nil, dir, "existing", tt.args...))
			require.Equal(t, existing, snapshotDir(t, dir), "bad input must not change the data directory")
		})
	}
}

func TestDaemonRejectsCorruptConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	corrupt := []byte(`{"name": "broken",` + "\n")
	require.NoError(t, os.WriteFile(path, corrupt, 0o600))

	r := daemonFails(t, nil, dir, "corrupt")
	require.Equal(t, 2, r.code, "%s", r)
	require.Contains(t, r.stderr, path, "%s", r)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, corrupt, got, "the corrupt config was changed")
	require.NoFileExists(t, filepath.Join(dir, "identity.key"), "nothing is created before the config is valid")
}

func TestDaemonRejectsExposedIdentityKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	r := peernode(t, "id", "--data-dir", dir)
	require.Equal(t, 0, r.code, "%s", r)
	key := filepath.Join(dir, "identity.key")
	require.NoError(t, os.Chmod(key, 0o644))
	before := snapshotDir(t, dir)["identity.key"]

	r = daemonFails(t, nil, dir, "exposed")
	require.NotEqual(t, 0, r.code, "%s", r)
	require.Contains(t, r.stderr, "readable by other users", "%s", r)
	require.Equal(t, before, snapshotDir(t, dir)["identity.key"], "the key file was changed")
	require.Equal(t, fs.FileMode(0o644), before.mode.Perm())
}

func TestCommandsWithoutDaemon(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")

	for _, args := range [][]string{{"peers"}, {"peers", "--json"}} {
		r := peernode(t, append(args, "--data-dir", dir)...)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "no peernode daemon is running", "%s", r)
		require.Contains(t, r.stderr, "peernode daemon", "the error suggests starting one: %s", r)
		require.Empty(t, r.stdout, "%s", r)
	}

	first := nodeID(t, dir)
	require.Empty(t, first.Addrs, "no daemon, no addresses")
	require.FileExists(t, filepath.Join(dir, "identity.key"), "the first id creates the identity")
	second := nodeID(t, dir)
	require.Equal(t, first.NodeID, second.NodeID, "the identity is kept")

	r := peernode(t, "version", "--json", "--data-dir", dir)
	var v map[string]any
	decodeJSON(t, r, &v)
	require.NotEmpty(t, v["version"], "%s", r)
	require.Equal(t, first.Version, v["version"])
}

func TestDaemonPortInUse(t *testing.T) {
	t.Parallel()
	a := startDaemon(t, t.TempDir(), "alpha")

	t.Run("listen", func(t *testing.T) {
		t.Parallel()
		r := daemonFails(t, nil, t.TempDir(), "listen-taken", "--listen", a.listenAddr())
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "in use", "%s", r)
		require.Contains(t, r.stderr, "--listen", "%s", r)
	})
	t.Run("api", func(t *testing.T) {
		t.Parallel()
		r := daemonFails(t, nil, t.TempDir(), "api-taken", "--api", a.apiAddr())
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "in use", "%s", r)
		require.Contains(t, r.stderr, "--api", "%s", r)
	})
}

func TestDaemonAPIRequiresToken(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, t.TempDir(), "alpha")
	url := "http://" + d.apiAddr() + "/v1/id"
	tokenPath := filepath.Join(d.dir, "api.token")
	tok, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	info, err := os.Stat(tokenPath)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), info.Mode().Perm(), "the token is private")

	get := func(auth string) (int, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body bytes.Buffer
		_, err = body.ReadFrom(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, body.Bytes()
	}

	code, _ := get("")
	require.Equal(t, http.StatusUnauthorized, code, "no token")
	code, _ = get("Bearer " + strings.Repeat("0", 64))
	require.Equal(t, http.StatusUnauthorized, code, "wrong token")
	code, body := get("Bearer " + strings.TrimSpace(string(tok)))
	require.Equal(t, http.StatusOK, code, "%s", body)
	var id idJSON
	require.NoError(t, json.Unmarshal(body, &id), "%s", body)
	require.Equal(t, d.id, id.NodeID)
}

func TestDaemonDataDirInUse(t *testing.T) {
	t.Parallel()
	a := startDaemon(t, t.TempDir(), "alpha")

	r := daemonFails(t, nil, a.dir, "second")
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "data directory in use", "%s", r)

	id := nodeID(t, a.dir)
	require.Equal(t, a.id, id.NodeID, "the first daemon still answers on its data directory")
	require.NotEmpty(t, id.Addrs)
}
