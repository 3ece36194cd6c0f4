package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeBackend struct {
	connectErr error
}

func (fakeBackend) ID() IDInfo {
	return IDInfo{NodeID: "12D3KooWtest", Name: "n", NetworkID: "abcd", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWtest"}, Version: "v"}
}

func (fakeBackend) Peers() []PeerInfo {
	return []PeerInfo{{NodeID: "12D3KooWpeer", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}, Direction: "inbound",
		ConnectedSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
}

func (f fakeBackend) Connect(_ context.Context, addr string) (ConnectResult, error) {
	if f.connectErr != nil {
		return ConnectResult{}, f.connectErr
	}
	return ConnectResult{NodeID: "from " + addr}, nil
}

const token = "s3cret-token"

// serve starts a real HTTP server on 127.0.0.1 and returns its address.
func serve(t *testing.T, b Backend) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	srv := NewServer(b, token)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

func get(t *testing.T, addr, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestEveryRequestNeedsTheToken(t *testing.T) {
	addr := serve(t, fakeBackend{})
	for _, path := range []string{"/v1/id", "/v1/peers", "/v1/connect", "/nope"} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
			code, body := get(t, addr, path, auth)
			require.Equal(t, http.StatusUnauthorized, code, "%s with %q", path, auth)
			require.Contains(t, body, "API token")
		}
	}
	code, _ := get(t, addr, "/v1/id", "Bearer "+token)
	require.Equal(t, http.StatusOK, code)
}

func TestJSONFieldNames(t *testing.T) {
	addr := serve(t, fakeBackend{})
	_, body := get(t, addr, "/v1/id", "Bearer "+token)
	var id map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &id))
	for _, k := range []string{"node_id", "name", "network_id", "addrs", "version"} {
		require.Contains(t, id, k)
	}
	_, body = get(t, addr, "/v1/peers", "Bearer "+token)
	var peers []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &peers))
	require.Len(t, peers, 1)
	for _, k := range []string{"node_id", "addrs", "direction", "connected_since"} {
		require.Contains(t, peers[0], k)
	}
	require.Equal(t, "2026-01-02T03:04:05Z", peers[0]["connected_since"])
}

func TestClient(t *testing.T) {
	addr := serve(t, fakeBackend{})
	c := NewClient(addr, token)
	ctx := context.Background()
	id, err := c.ID(ctx)
	require.NoError(t, err)
	require.Equal(t, "12D3KooWtest", id.NodeID)
	peers, err := c.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, peers, 1)
	res, err := c.Connect(ctx, "/ip4/1.2.3.4/tcp/1")
	require.NoError(t, err)
	require.Equal(t, "from /ip4/1.2.3.4/tcp/1", res.NodeID)

	_, err = NewClient(addr, "wrong").ID(ctx)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
}

func TestConnectErrors(t *testing.T) {
	bad := serve(t, fakeBackend{connectErr: fmt.Errorf("%w: not a multiaddr", ErrBadRequest)})
	down := serve(t, fakeBackend{connectErr: errors.New("dial failed")})
	ctx := context.Background()
	var se *StatusError

	_, err := NewClient(bad, token).Connect(ctx, "x")
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)
	require.Contains(t, se.Message, "not a multiaddr")

	_, err = NewClient(down, token).Connect(ctx, "x")
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadGateway, se.Code)

	// A malformed body is the caller's fault.
	req, _ := http.NewRequest(http.MethodPost, "http://"+bad+"/v1/connect", strings.NewReader(`{"addr": 5}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// An oversized body is refused, not read to the end.
	huge := strings.NewReader(`{"addr": "` + strings.Repeat("a", 2*maxBodyBytes) + `"}`)
	req, _ = http.NewRequest(http.MethodPost, "http://"+bad+"/v1/connect", huge)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	_, err := ClientForDataDir(dir)
	require.ErrorIs(t, err, ErrNoDaemon)

	// A stale address file (the daemon died) is also "no daemon".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	stale := ln.Addr().String()
	require.NoError(t, ln.Close())
	require.NoError(t, WriteAddrFile(dir, stale))
	_, err = LoadOrCreateToken(dir)
	require.NoError(t, err)
	c, err := ClientForDataDir(dir)
	require.NoError(t, err)
	_, err = c.ID(context.Background())
	require.ErrorIs(t, err, ErrNoDaemon)
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		_, err := Listen(addr, false)
		require.ErrorIs(t, err, ErrRemoteAddr, addr)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		ln, err := Listen(addr, false)
		require.NoError(t, err, addr)
		require.NoError(t, ln.Close())
	}
	ln, err := Listen("0.0.0.0:0", true)
	require.NoError(t, err)
	require.NoError(t, ln.Close())

	_, err = Listen("no-port", false)
	require.Error(t, err)
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadOrCreateToken(dir)
	require.NoError(t, err)
	require.Len(t, tok, 2*tokenBytes)
	fi, err := os.Stat(filepath.Join(dir, TokenFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := LoadOrCreateToken(dir)
	require.NoError(t, err)
	require.Equal(t, tok, again)
}
