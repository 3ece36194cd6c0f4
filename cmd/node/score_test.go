package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/api"
)

// A node ID for tests that never reach a node.
const testNodeID = "12D3KooWJhHgZy4DVUv3wp89WCTonoHy4ce4dZ15VER38HUtTsrz"

func TestPingFlags(t *testing.T) {
	env, _ := testEnv(nil)
	node, count, common, err := parsePing(env, []string{testNodeID})
	require.NoError(t, err)
	require.Equal(t, testNodeID, node)
	require.Equal(t, api.DefaultPingCount, count)
	require.False(t, common.json)

	node, count, common, err = parsePing(env, []string{"--count", "100", testNodeID, "--json", "--data-dir", "/x"})
	require.NoError(t, err)
	require.Equal(t, testNodeID, node)
	require.Equal(t, 100, count)
	require.True(t, common.json)
	require.Equal(t, "/x", common.dataDir)

	_, count, _, err = parsePing(env, []string{testNodeID, "--count=1"})
	require.NoError(t, err)
	require.Equal(t, 1, count)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "expected one node ID"},
		{[]string{testNodeID, testNodeID}, "expected one node ID"},
		{[]string{"beta"}, `"beta" is not a node ID`},
		{[]string{testNodeID, "--count", "0"}, "--count 0: want an integer from 1 to 100"},
		{[]string{testNodeID, "--count", "101"}, "--count 101"},
		{[]string{testNodeID, "--count", "-3"}, "--count -3"},
		{[]string{testNodeID, "--count", "many"}, "count"},
		{[]string{testNodeID, "--interval", "1s"}, "-interval"},
	} {
		_, _, _, err := parsePing(env, tt.args)
		require.ErrorAs(t, err, new(usageError), "%v", tt.args)
		require.ErrorContains(t, err, tt.want, "%v", tt.args)
	}
}

func TestPeersFlags(t *testing.T) {
	env, _ := testEnv(nil)
	explain, common, err := parsePeers(env, nil)
	require.NoError(t, err)
	require.Empty(t, explain)
	require.False(t, common.json)

	explain, common, err = parsePeers(env, []string{"--explain", testNodeID, "--json"})
	require.NoError(t, err)
	require.Equal(t, testNodeID, explain)
	require.True(t, common.json)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--explain", "beta"}, `--explain: "beta" is not a node ID`},
		{[]string{"--explain="}, `--explain: "" is not a node ID`},
		{[]string{"--explain"}, "flag needs an argument"},
		{[]string{testNodeID}, "unexpected argument"},
	} {
		_, _, err := parsePeers(env, tt.args)
		require.ErrorAs(t, err, new(usageError), "%v", tt.args)
		require.ErrorContains(t, err, tt.want, "%v", tt.args)
	}
}

// Usage errors exit with status 2 before the command looks for a daemon;
// without a daemon, a well-formed command exits with status 1.
func TestPingCommandWithoutDaemon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"ping", "--data-dir", dir},
		{"ping", "not-a-node", "--data-dir", dir},
		{"ping", testNodeID, "--count", "0", "--data-dir", dir},
		{"peers", "--explain", "not-a-node", "--data-dir", dir},
	} {
		env, errb := testEnv(nil)
		require.Equal(t, exitUsage, run(env, args), "%v", args)
		require.Contains(t, errb.String(), "Run 'peernode "+args[0]+" --help'", "%v", args)
	}
	for _, args := range [][]string{
		{"ping", testNodeID, "--data-dir", dir},
		{"peers", "--explain", testNodeID, "--data-dir", dir},
	} {
		env, errb := testEnv(nil)
		require.Equal(t, exitError, run(env, args), "%v", args)
		require.Contains(t, errb.String(), "no peernode daemon is running", "%v", args)
	}
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "neither command creates a data directory")

	env, _ := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"ping", "--help"}))
	help := env.stdout.(*bytes.Buffer).String()
	for _, w := range []string{"Usage: peernode ping NODE [--count N]", "Examples:", "peernode ping 12D3KooW... --count 10",
		"-count", "(default 3)", "from 1 to 100"} {
		require.Contains(t, help, w)
	}
	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"peers", "--help"}))
	help = env.stdout.(*bytes.Buffer).String()
	for _, w := range []string{"Usage: peernode peers [--explain NODE]", "Examples:", "peernode peers --explain 12D3KooW...", "-explain", "SCORE"} {
		require.Contains(t, help, w)
	}
}

func TestPrintPing(t *testing.T) {
	env, _ := testEnv(nil)
	printPing(env, api.PingResult{NodeID: testNodeID, RTTsMillis: []float64{1.234, 0.5, 2}}, 3)
	require.Equal(t, "rtt 1.23 ms\nrtt 0.50 ms\nrtt 2.00 ms\n"+
		"3 of 3 pings to "+testNodeID+" answered: min 0.50 ms, avg 1.24 ms, max 2.00 ms\n", env.stdout.(*bytes.Buffer).String())

	env, _ = testEnv(nil)
	printPing(env, api.PingResult{NodeID: testNodeID, RTTsMillis: []float64{}, Error: "unreachable"}, 2)
	require.Empty(t, env.stdout.(*bytes.Buffer).String(), "no RTT, no summary")
}

func TestPrintExplanation(t *testing.T) {
	env, _ := testEnv(nil)
	now := time.Now()
	require.NoError(t, printExplanation(env, api.ScoreExplanation{
		NodeID: testNodeID, Score: 0.79, RTTMillis: ptr(1.5), Reliability: 0.8,
		Components: []api.ScoreComponent{
			{Name: "latency", Weight: 0.4, Value: 0.9, Contribution: 0.36, Samples: 12, Last: now.Add(-3 * time.Second), Detail: "smoothed RTT 1.5ms"},
			{Name: "reliability", Weight: 0.3, Value: 0.8, Contribution: 0.24, Samples: 11, Last: now.Add(-3 * time.Second), Detail: "11 successes"},
			{Name: "freshness", Weight: 0.2, Value: 0.5, Contribution: 0.1, Detail: "never heard announcing"},
			{Name: "penalty", Weight: 0.1, Value: 0.9, Contribution: 0.09, Samples: 1, Last: now.Add(-time.Minute), Detail: "penalty\t0.11"},
		},
	}))
	lines := strings.Split(env.stdout.(*bytes.Buffer).String(), "\n")
	require.Equal(t, "node "+testNodeID+": score 0.790 (smoothed RTT 1.5ms, reliability 0.80)", lines[0])
	require.Empty(t, lines[1])
	require.Regexp(t, `^COMPONENT\s+WEIGHT\s+VALUE\s+CONTRIBUTION\s+SAMPLES\s+LAST\s+DETAIL$`, lines[2])
	require.Regexp(t, `^latency\s+0\.40\s+0\.900\s+0\.360\s+12\s+3s ago\s+smoothed RTT 1\.5ms$`, lines[3])
	require.Regexp(t, `^reliability\s+0\.30\s+0\.800\s+0\.240\s+11\s+3s ago\s+11 successes$`, lines[4])
	require.Regexp(t, `^freshness\s+0\.20\s+0\.500\s+0\.100\s+0\s+-\s+never heard announcing$`, lines[5])
	require.Regexp(t, `^penalty\s+0\.10\s+0\.900\s+0\.090\s+1\s+1m0s ago\s+penalty\?0\.11$`, lines[6], "a tab cannot break the table")
	require.Regexp(t, `^total\s+0\.790$`, strings.TrimRight(lines[7], " "))
	// The total sits in the contribution column.
	require.Equal(t, strings.Index(lines[2], "CONTRIBUTION"), strings.Index(lines[7], "0.790"))

	env, _ = testEnv(nil)
	require.NoError(t, printExplanation(env, api.ScoreExplanation{NodeID: testNodeID, Score: 0.5, Reliability: 0.5}))
	require.Contains(t, env.stdout.(*bytes.Buffer).String(), "score 0.500 (no RTT yet, reliability 0.50)")
}

func ptr[T any](v T) *T { return &v }

// fakeDaemon is a control API backend for the CLI's tests: Score and Ping
// answer as configured; every other method is absent (a call panics).
type fakeDaemon struct {
	api.Backend
	score    api.ScoreExplanation
	scoreErr error
	rtts     []time.Duration
	pingErr  error
}

func (f fakeDaemon) Score(p peer.ID) (api.ScoreExplanation, error) {
	e := f.score
	e.NodeID = p.String()
	return e, f.scoreErr
}

func (f fakeDaemon) Ping(context.Context, peer.ID, int) ([]time.Duration, error) {
	return f.rtts, f.pingErr
}

// serveFake runs the control API over b and records it in a data
// directory, as a daemon does; it returns the directory.
func serveFake(t *testing.T, b api.Backend) string {
	t.Helper()
	dir := t.TempDir()
	tok, err := api.LoadOrCreateToken(dir)
	require.NoError(t, err)
	ln, err := api.Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	require.NoError(t, api.WriteAddrFile(dir, ln.Addr().String()))
	srv := api.NewServer(b, tok)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, <-done)
	})
	return dir
}

func TestPingCommand(t *testing.T) {
	ok := serveFake(t, fakeDaemon{rtts: []time.Duration{1230 * time.Microsecond, 2 * time.Millisecond}})
	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"ping", testNodeID, "--count", "2", "--data-dir", ok}), errb.String())
	require.Equal(t, "rtt 1.23 ms\nrtt 2.00 ms\n2 of 2 pings to "+testNodeID+" answered: min 1.23 ms, avg 1.61 ms, max 2.00 ms\n",
		env.stdout.(*bytes.Buffer).String())

	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"ping", testNodeID, "--json", "--data-dir", ok}), errb.String())
	require.JSONEq(t, `{"node_id": "`+testNodeID+`", "rtts_ms": [1.23, 2]}`, env.stdout.(*bytes.Buffer).String())

	// The second ping fails: the first RTT, the error, status 1.
	failing := serveFake(t, fakeDaemon{rtts: []time.Duration{time.Millisecond}, pingErr: errors.New("ping x: stream reset")})
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"ping", testNodeID, "--data-dir", failing}))
	require.Equal(t, "rtt 1.00 ms\n1 of 3 pings to "+testNodeID+" answered: min 1.00 ms, avg 1.00 ms, max 1.00 ms\n",
		env.stdout.(*bytes.Buffer).String())
	require.Equal(t, "peernode ping: ping x: stream reset\n", errb.String())

	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"ping", testNodeID, "--json", "--data-dir", failing}))
	require.JSONEq(t, `{"node_id": "`+testNodeID+`", "rtts_ms": [1], "error": "ping x: stream reset"}`, env.stdout.(*bytes.Buffer).String())
	require.Contains(t, errb.String(), "stream reset")

	// The daemon refuses (this node itself): status 1, its message.
	self := serveFake(t, fakeDaemon{pingErr: api.Mark(errors.New("ping x: that is this node"), api.ErrBadRequest)})
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"ping", testNodeID, "--data-dir", self}))
	require.Empty(t, env.stdout.(*bytes.Buffer).String())
	require.Contains(t, errb.String(), "that is this node")
}

func TestExplainCommand(t *testing.T) {
	e := api.ScoreExplanation{Score: 0.75, Reliability: 0.5, Components: []api.ScoreComponent{
		{Name: "latency", Weight: 0.5, Value: 1, Contribution: 0.5, Samples: 1, Last: time.Now()},
		{Name: "penalty", Weight: 0.5, Value: 0.5, Contribution: 0.25},
	}}
	dir := serveFake(t, fakeDaemon{score: e})
	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"peers", "--explain", testNodeID, "--data-dir", dir}), errb.String())
	out := env.stdout.(*bytes.Buffer).String()
	require.Contains(t, out, "node "+testNodeID+": score 0.750")
	require.Regexp(t, `(?m)^latency\s+0\.50\s+1\.000\s+0\.500\s+1\s+\d+s ago\s+-$`, out)
	require.Regexp(t, `(?m)^total\s+0\.750\s*$`, out)

	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"peers", "--explain", testNodeID, "--json", "--data-dir", dir}), errb.String())
	var got map[string]any
	require.NoError(t, json.Unmarshal(env.stdout.(*bytes.Buffer).Bytes(), &got))
	require.Equal(t, testNodeID, got["node_id"])
	require.InDelta(t, 0.75, got["score"], 1e-9)
	require.NotContains(t, got, "rtt_ms")
	require.Len(t, got["components"], 2)

	unknown := serveFake(t, fakeDaemon{scoreErr: api.Mark(errors.New("score of x: unknown node"), api.ErrNotFound)})
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"peers", "--explain", testNodeID, "--data-dir", unknown}))
	require.Contains(t, errb.String(), "404")
	require.Contains(t, errb.String(), "unknown node")
}
