package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseCrawlQuery(t *testing.T) {
	def := DefaultCrawlRequest()
	require.Equal(t, CrawlRequest{Depth: -1, MaxPeers: 1000, Timeout: 30 * time.Second}, def)
	for _, tt := range []struct {
		query string
		want  CrawlRequest
	}{
		{"", def},
		{"depth=0", CrawlRequest{Depth: 0, MaxPeers: def.MaxPeers, Timeout: def.Timeout}},
		{"depth=-1&max=1&timeout=5m", CrawlRequest{Depth: -1, MaxPeers: 1, Timeout: MaxCrawlTimeout}},
		{"max=20", CrawlRequest{Depth: def.Depth, MaxPeers: 20, Timeout: def.Timeout}},
		{"timeout=1500ms&depth=3", CrawlRequest{Depth: 3, MaxPeers: def.MaxPeers, Timeout: 1500 * time.Millisecond}},
	} {
		got, err := ParseCrawlQuery(tt.query)
		require.NoError(t, err, tt.query)
		require.Equal(t, tt.want, got, tt.query)
	}

	for _, tt := range []struct {
		query, param string // param: the parameter a *CrawlParamError names
		want         string // in the message
	}{
		{"depth=x", "depth", "want an integer, -1 (no limit) or more"},
		{"depth=1.5", "depth", "integer"},
		{"depth=-2", "depth", "-1 (no limit) or more"},
		{"depth=99999999999999999999", "depth", "integer"},
		{"max=0", "max", "at least 1"},
		{"max=-1", "max", "at least 1"},
		{"max=ten", "max", "integer"},
		{"timeout=30", "timeout", "duration such as 30s"},
		{"timeout=soon", "timeout", "duration"},
		{"timeout=0s", "timeout", "positive"},
		{"timeout=-1s", "timeout", "positive"},
		{"timeout=5m1s", "timeout", "at most 5m0s"},
		{"timeout=1h", "timeout", "at most 5m0s"},
		{"depth=-2&max=0", "depth", "depth=-2"},
		{"max=0&timeout=0s", "max", "max=0"},
		{"max_peers=5", "", `unknown crawl parameter "max_peers"`},
		{"depth=1&depth=2", "", "given 2 times"},
		{"depth=%zz", "", "crawl query"},
	} {
		_, err := ParseCrawlQuery(tt.query)
		require.Error(t, err, tt.query)
		require.Contains(t, err.Error(), tt.want, tt.query)
		var pe *CrawlParamError
		if tt.param == "" {
			require.False(t, errors.As(err, &pe), "%s: %v", tt.query, err)
			continue
		}
		require.ErrorAs(t, err, &pe, tt.query)
		require.Equal(t, tt.param, pe.Param, tt.query)
	}
}

// The query a client sends is the request the server reads.
func TestCrawlQueryRoundTrip(t *testing.T) {
	for _, req := range []CrawlRequest{
		DefaultCrawlRequest(),
		{Depth: 0, MaxPeers: 1, Timeout: time.Millisecond},
		{Depth: 7, MaxPeers: 50, Timeout: 2*time.Minute + 500*time.Millisecond},
	} {
		got, err := ParseCrawlQuery(req.query())
		require.NoError(t, err)
		require.Equal(t, req, got)
	}
}

func TestCrawlEndpoint(t *testing.T) {
	var crawls []CrawlRequest
	addr := serve(t, fakeBackend{crawls: &crawls})
	auth := "Bearer " + token

	// No parameters: the defaults.
	code, body := get(t, addr, "/v1/crawl", auth)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []CrawlRequest{DefaultCrawlRequest()}, crawls)

	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	for _, k := range []string{"nodes", "members", "dropped", "unvisited", "timed_out", "elapsed_ms"} {
		require.Contains(t, res, k)
	}
	require.Equal(t, float64(2), res["members"])
	require.Equal(t, float64(1), res["dropped"])
	require.Equal(t, float64(3), res["unvisited"])
	require.Equal(t, true, res["timed_out"])
	require.InDelta(t, 1500.5, res["elapsed_ms"], 1e-9, "milliseconds, as a float")
	nodes := res["nodes"].([]any)
	require.Len(t, nodes, 3)
	start, reached, failed := nodes[0].(map[string]any), nodes[1].(map[string]any), nodes[2].(map[string]any)
	for _, n := range nodes {
		for _, k := range []string{"node_id", "depth", "via", "name", "addrs", "connected_count", "connected", "announcements"} {
			require.Contains(t, n, k)
		}
	}
	require.Equal(t, fakeSelf, start["node_id"])
	require.Equal(t, "", start["via"], "the start was reached through no one")
	require.NotContains(t, start, "error", "it answered: no error")
	require.Equal(t, float64(1), reached["depth"])
	require.Equal(t, fakeSelf, reached["via"])
	require.Equal(t, []any{fakeSelf}, reached["connected"])
	require.Equal(t, float64(1), reached["connected_count"])
	require.Equal(t, "crawl timed out", failed["error"])
	require.Equal(t, []any{}, failed["addrs"], "addrs is a list, even empty")
	require.Equal(t, []any{}, failed["connected"], "connected is a list, even empty")

	// Parameters given are passed on.
	crawls = nil
	code, body = get(t, addr, "/v1/crawl?depth=2&max=10&timeout=90s", auth)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []CrawlRequest{{Depth: 2, MaxPeers: 10, Timeout: 90 * time.Second}}, crawls)

	// Bad parameters: 400 with the error body, and no crawl.
	crawls = nil
	for _, q := range []string{"depth=x", "depth=-2", "max=0", "max=1e3", "timeout=10", "timeout=0s", "timeout=6m", "limit=3"} {
		code, body := get(t, addr, "/v1/crawl?"+q, auth)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", q, body)
		var e map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &e), q)
		require.Contains(t, e["error"], "crawl", q)
		require.Contains(t, e["error"], "want", q)
	}
	require.Empty(t, crawls, "a bad request reaches no backend")

	code, _ = do(t, http.MethodPost, addr, "/v1/crawl", auth, "")
	require.Equal(t, http.StatusMethodNotAllowed, code, "crawl is GET only")
}

func TestCrawlErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"bad bounds", Mark(errors.New("crawl concurrency 0: want at least 1"), ErrBadRequest), http.StatusBadRequest},
		{"broken", errors.New("node is closing"), http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, fakeBackend{crawlErr: tt.err})
			_, err := NewClient(addr, token).Crawl(context.Background(), DefaultCrawlRequest())
			var se *StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.code, se.Code)
			require.Equal(t, tt.err.Error(), se.Message)
		})
	}
}

func TestClientCrawl(t *testing.T) {
	var crawls []CrawlRequest
	addr := serve(t, fakeBackend{crawls: &crawls})
	c := NewClient(addr, token)
	req := CrawlRequest{Depth: 0, MaxPeers: 3, Timeout: 1500 * time.Millisecond}
	res, err := c.Crawl(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, []CrawlRequest{req}, crawls, "the client sends every bound")
	want := fakeCrawl
	want.Nodes = append([]CrawledNode(nil), fakeCrawl.Nodes...)
	want.Nodes[2].Addrs, want.Nodes[2].Connected = []string{}, []string{}
	require.Equal(t, want, res)

	// The client does not check bounds: the server does.
	_, err = c.Crawl(context.Background(), CrawlRequest{Depth: -2, MaxPeers: 1, Timeout: time.Second})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)
	require.Contains(t, se.Message, "depth=-2")
}

// A caller that goes away ends the crawl: the request's context bounds it.
func TestCrawlEndsWithTheRequest(t *testing.T) {
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	addr := serve(t, fakeBackend{crawlStarted: started, crawlEnded: ended})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := NewClient(addr, token).Crawl(ctx, DefaultCrawlRequest())
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the crawl never reached the backend")
	}
	cancel()
	select {
	case err := <-ended:
		require.ErrorIs(t, err, context.Canceled, "the backend's context ends with the request")
	case <-time.After(10 * time.Second):
		t.Fatal("the crawl outlived its request")
	}
	require.ErrorIs(t, <-errc, context.Canceled)
}

func TestMembersJSON(t *testing.T) {
	addr := serve(t, fakeBackend{})
	code, body := get(t, addr, "/v1/members", "Bearer "+token)
	require.Equal(t, http.StatusOK, code, body)
	var ms []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &ms))
	require.Len(t, ms, 2)
	for _, m := range ms {
		for _, k := range []string{"node_id", "name", "role", "addrs", "version", "blob_count", "bytes_stored",
			"seq", "first_heard", "last_heard", "source", "connected", "status"} {
			require.Contains(t, m, k)
		}
	}
	beta, saved := ms[0], ms[1]
	require.Equal(t, fakePeer, beta["node_id"])
	require.Equal(t, []any{"/ip4/127.0.0.1/tcp/2/p2p/" + fakePeer}, beta["addrs"])
	require.Equal(t, float64(7), beta["blob_count"])
	require.Equal(t, float64(4096), beta["bytes_stored"])
	require.Equal(t, float64(42), beta["seq"])
	require.Equal(t, "2026-01-02T03:04:05Z", beta["first_heard"])
	require.Equal(t, "2026-01-02T03:05:00Z", beta["last_heard"])
	require.Equal(t, "gossip", beta["source"])
	require.Equal(t, true, beta["connected"])
	require.Equal(t, "verified", beta["status"])
	require.Equal(t, []any{}, saved["addrs"], "addrs is a list, even empty")
	require.Equal(t, false, saved["connected"])
	require.Equal(t, "unknown", saved["status"])

	got, err := NewClient(addr, token).Members(context.Background())
	require.NoError(t, err)
	want := fakeBackend{}.Members()
	want[1].Addrs = []string{}
	require.Equal(t, want, got)
}

// An empty member table is an empty list, not null.
func TestMembersEmpty(t *testing.T) {
	addr := serve(t, emptyBackend{})
	for _, path := range []string{"/v1/members", "/v1/peers"} {
		code, body := get(t, addr, path, "Bearer "+token)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, "[]", body, path)
	}
	code, body := get(t, addr, "/v1/crawl", "Bearer "+token)
	require.Equal(t, http.StatusOK, code, body)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, []any{}, res["nodes"], fmt.Sprint(res))
}

// emptyBackend knows nothing at all.
type emptyBackend struct{ fakeBackend }

func (emptyBackend) Peers() []PeerInfo { return nil }
func (emptyBackend) Members() []Member { return nil }
func (emptyBackend) Crawl(context.Context, CrawlRequest) (CrawlResult, error) {
	return CrawlResult{}, nil
}
