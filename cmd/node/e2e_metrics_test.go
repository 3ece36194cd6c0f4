package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peernode/api"
)

// A daemon's /metrics has the resource manager's usage and limits, read at
// scrape time, and none of libp2p's per-event resource manager metrics,
// whose trace the node turns off (it cost 5 to 6 % of the CPU of a node
// taking many connections).
func TestDaemonResourceMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startDaemon(t, dir, "metered")
	tok, err := api.ReadToken(dir)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://"+d.apiAddr()+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(b)
	for _, want := range []string{
		`peernode_resources_connections{direction="inbound",scope="system"}`,
		`peernode_resources_streams{direction="outbound",scope="transient"}`,
		`peernode_resources_memory_bytes{scope="system"}`,
		`peernode_resources_fds{scope="system"}`,
		`peernode_resources_limit{resource="connections"} 1024`, // --max-conns' default
		`peernode_resources_limit{resource="streams"} 8192`,     // --max-streams' default
	} {
		require.Contains(t, text, want, "%s", grepLines(text, "peernode_resources"))
	}
	require.NotContains(t, text, "libp2p_rcmgr_")
	require.Contains(t, text, "libp2p_swarm_")
}

// grepLines is the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
