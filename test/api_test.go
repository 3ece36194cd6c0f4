package test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peernode/api"
	"peernode/node"
)

// The control API of a real node, found the way the CLI finds it: through
// the data directory.
func TestAPIOfRunningNode(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	c, err := api.ClientForDataDir(a.Config().DataDir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()

	id, err := c.ID(ctx)
	require.NoError(t, err)
	require.Equal(t, a.ID().String(), id.NodeID)
	require.Equal(t, a.Config().Network.ID, id.NetworkID)
	require.Equal(t, node.Version, id.Version)
	require.NotEmpty(t, id.Addrs)
	for _, addr := range id.Addrs {
		require.Regexp(t, "/p2p/"+id.NodeID+"$", addr)
	}

	peers, err := c.Peers(ctx)
	require.NoError(t, err)
	require.Empty(t, peers)

	res, err := c.Connect(ctx, b.Addrs()[0].String())
	require.NoError(t, err)
	require.Equal(t, b.ID().String(), res.NodeID)
	peers, err = c.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, peers, 1)
	require.Equal(t, b.ID().String(), peers[0].NodeID)
	require.Equal(t, "outbound", peers[0].Direction)
	require.False(t, peers[0].ConnectedSince.IsZero())

	_, err = c.Connect(ctx, "/ip4/127.0.0.1/tcp/1")
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)

	// Without the right token: 401, and nothing on disk changes.
	before := dirState(t, a.Config().DataDir)
	_, err = api.NewClient(a.APIAddr(), "not-the-token").Peers(ctx)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
	require.Equal(t, before, dirState(t, a.Config().DataDir))

	// Close removes the address file: the CLI then reports no daemon.
	require.NoError(t, a.Close())
	_, err = api.ClientForDataDir(a.Config().DataDir)
	require.ErrorIs(t, err, api.ErrNoDaemon)
}

// dirState maps each file of dir to its content.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// /metrics serves the handshake counters, behind the API token like every
// other route.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		if i == 1 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	WaitVerified(t, nodes[1], nodes[0].ID())
	WaitVerified(t, nodes[0], nodes[1].ID())
	dir := nodes[0].Config().DataDir
	tok, err := api.ReadToken(dir)
	require.NoError(t, err)
	get := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+nodes[0].APIAddr()+"/metrics", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get(tok)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `peernode_handshake_results_total{direction="inbound",reason="none",result="verified"}`)
	require.Contains(t, body, `peernode_handshake_duration_seconds_bucket`)
}
