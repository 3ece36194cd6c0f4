package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peernode/api"
)

func TestCrawlFlags(t *testing.T) {
	env, _ := testEnv(nil)
	req, common, err := parseCrawl(env, nil)
	require.NoError(t, err)
	require.Equal(t, api.DefaultCrawlRequest(), req)
	require.False(t, common.json)

	req, common, err = parseCrawl(env, []string{"--depth", "-1", "--max-peers", "1", "--timeout", "5m", "--json"})
	require.NoError(t, err)
	require.Equal(t, api.CrawlRequest{Depth: -1, MaxPeers: 1, Timeout: 5 * time.Minute}, req)
	require.True(t, common.json)

	req, _, err = parseCrawl(env, []string{"--depth=0", "--timeout=1500ms"})
	require.NoError(t, err)
	require.Equal(t, api.CrawlRequest{Depth: 0, MaxPeers: api.DefaultCrawlMaxPeers, Timeout: 1500 * time.Millisecond}, req)

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--depth", "-2"}, []string{"--depth -2", "-1 (no limit) or more"}},
		{[]string{"--depth", "two"}, []string{"depth", "two"}},
		{[]string{"--max-peers", "0"}, []string{"--max-peers 0", "at least 1"}},
		{[]string{"--max-peers", "-5"}, []string{"--max-peers -5", "at least 1"}},
		{[]string{"--timeout", "0s"}, []string{"--timeout 0s", "positive"}},
		{[]string{"--timeout", "-3s"}, []string{"--timeout -3s", "positive"}},
		{[]string{"--timeout", "6m"}, []string{"--timeout 6m0s", "at most 5m0s"}},
		{[]string{"--timeout", "30"}, []string{"timeout", "30"}},
		{[]string{"--max", "3"}, []string{"-max"}},
		{[]string{"somewhere"}, []string{`unexpected argument "somewhere"`}},
	} {
		_, _, err := parseCrawl(env, tt.args)
		require.ErrorAs(t, err, new(usageError), "%v", tt.args)
		for _, w := range tt.want {
			require.Contains(t, err.Error(), w, "%v", tt.args)
		}
	}
}

// The command checks its flags before it looks for a daemon: a bad bound
// is a usage error (status 2) even with no daemon running.
func TestCrawlCommandWithoutDaemon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env, errb := testEnv(nil)
	require.Equal(t, exitUsage, run(env, []string{"crawl", "--max-peers", "0", "--data-dir", dir}))
	require.Contains(t, errb.String(), "peernode crawl: --max-peers 0: want an integer, at least 1")
	require.Contains(t, errb.String(), "peernode crawl --help")

	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"crawl", "--depth", "2", "--data-dir", dir}))
	require.Contains(t, errb.String(), "no peernode daemon is running")
	require.Contains(t, errb.String(), "peernode daemon --data-dir "+dir)

	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"crawl", "--help"}))
	help := env.stdout.(*bytes.Buffer).String()
	for _, w := range []string{"Usage: peernode crawl [--depth N] [--max-peers M] [--timeout D]", "Examples:", "peernode crawl --depth 1",
		"-depth", "-max-peers", "-timeout", "(default 30s)", "(default 1000)", "(default -1)"} {
		require.Contains(t, help, w)
	}
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "crawl creates no data directory")
}

func TestPrintCrawl(t *testing.T) {
	env, _ := testEnv(nil)
	require.NoError(t, printCrawl(env, api.CrawlResult{
		Nodes: []api.CrawledNode{
			{NodeID: "12D3KooWself", Name: "alpha", ConnectedCount: 2},
			{NodeID: "12D3KooWbeta", Depth: 1, Via: "12D3KooWself", Name: "beta\tx", ConnectedCount: 1},
			{NodeID: "12D3KooWgone", Depth: 1, Via: "12D3KooWself", Error: "crawl timed out"},
		},
		Members: 3, Dropped: 1, Unvisited: 4, TimedOut: true, ElapsedMillis: 1234.4,
	}))
	out := env.stdout.(*bytes.Buffer).String()
	lines := strings.Split(out, "\n")
	require.Regexp(t, `^DEPTH\s+NODE ID\s+NAME\s+CONNECTED\s+ERROR$`, lines[0])
	require.Regexp(t, `^0\s+12D3KooWself\s+alpha\s+2\s+-$`, lines[1])
	require.Regexp(t, `^1\s+12D3KooWbeta\s+beta\?x\s+1\s+-$`, lines[2], "a remote name cannot break the table")
	require.Regexp(t, `^1\s+12D3KooWgone\s+-\s+0\s+crawl timed out$`, lines[3])
	require.Contains(t, out, "3 nodes asked, 3 members seen, 4 unvisited, 1 dropped, timed out: yes, elapsed 1.234s\n")
	require.Contains(t, out, "raise --timeout")
}

func TestPrintPeers(t *testing.T) {
	env, _ := testEnv(nil)
	now := time.Now()
	smoothed := 1.25
	require.NoError(t, printPeers(env, []api.PeerInfo{
		{NodeID: "12D3KooWbeta", Status: api.PeerStatusVerified, Direction: "inbound", ConnectedSince: now.Add(-time.Minute),
			Name: "beta", Role: "full", Version: "0.1.0", HandshakeRTTMillis: 2.5,
			Connected: true, LastHeard: now.Add(-3 * time.Second), BlobCount: 12,
			Score: 0.934, RTTMillis: &smoothed, Reliability: 0.987},
		{NodeID: "12D3KooWgamma", Status: api.PeerStatusDisconnected, Name: "gamma", Role: "client",
			LastHeard: now.Add(-90 * time.Second), HandshakeRTTMillis: 31, Score: 0.5, Reliability: 0.5},
		{NodeID: "12D3KooWnever", Status: api.PeerStatusError, Score: 0.41, Reliability: 0.5},
	}))
	lines := strings.Split(env.stdout.(*bytes.Buffer).String(), "\n")
	require.Regexp(t, `^NODE ID\s+SCORE\s+STATUS\s+CONNECTED\s+SINCE\s+LAST HEARD\s+NAME\s+ROLE\s+VERSION\s+BLOBS\s+RTT\s+RELIABILITY$`, lines[0])
	// The smoothed RTT wins over the handshake's.
	require.Regexp(t, `^12D3KooWbeta\s+0\.93\s+verified\s+yes\s+1m0s ago \(in\)\s+3s ago\s+beta\s+full\s+0\.1\.0\s+12\s+1\.2ms\s+0\.99$`, lines[1])
	// Without it, the handshake's.
	require.Regexp(t, `^12D3KooWgamma\s+0\.50\s+disconnected\s+no\s+-\s+1m30s ago\s+gamma\s+client\s+-\s+0\s+31ms\s+0\.50$`, lines[2])
	require.Regexp(t, `^12D3KooWnever\s+0\.41\s+error\s+no\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+0\.50$`, lines[3])
}

func TestMDNSSetting(t *testing.T) {
	cfg, err := daemonNodeConfig(t, filepath.Join(t.TempDir(), "data"))
	require.NoError(t, err)
	require.False(t, cfg.MDNS, "mDNS is off by default")

	cfg, err = daemonNodeConfig(t, filepath.Join(t.TempDir(), "data"), "--mdns")
	require.NoError(t, err)
	require.True(t, cfg.MDNS)

	_, err = daemonNodeConfig(t, filepath.Join(t.TempDir(), "data"), "--mdns=maybe")
	require.ErrorAs(t, err, new(usageError))
	require.Contains(t, err.Error(), "mdns")

	// The config file key, which a flag overrides for one run.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, configFileName), []byte(`{"mdns": true}`), 0o600))
	cfg, err = daemonNodeConfig(t, dir)
	require.NoError(t, err)
	require.True(t, cfg.MDNS)
	cfg, err = daemonNodeConfig(t, dir, "--mdns=false")
	require.NoError(t, err)
	require.False(t, cfg.MDNS)

	// Saved on first start like every setting.
	fresh := filepath.Join(t.TempDir(), "data")
	env, _ := testEnv(nil)
	s, first, err := daemonSettings(t, env, fresh, "--mdns")
	require.NoError(t, err)
	require.True(t, first)
	require.NoError(t, saveSettings(fresh, s))
	b, err := os.ReadFile(filepath.Join(fresh, configFileName))
	require.NoError(t, err)
	require.Contains(t, string(b), `"mdns": true`)

	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"daemon", "--help"}))
	require.Contains(t, env.stdout.(*bytes.Buffer).String(), "multicast DNS; off by default")
}
