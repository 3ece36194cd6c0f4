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

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

type fakeBackend struct {
	connectErr error
	// trustErr is what TrustAction returns; calls, if set, records its
	// calls.
	trustErr error
	calls    *[]trustCall
	// crawlErr is what Crawl returns; crawls, if set, records the
	// requests it got.
	crawlErr error
	crawls   *[]CrawlRequest
	// crawlStarted, if set, makes Crawl signal on it and wait for its
	// context to end, then send the context's error on crawlEnded.
	crawlStarted chan<- struct{}
	crawlEnded   chan<- error
	// peers, if set, is what Peers returns instead of its usual two.
	peers []PeerInfo
	// scoreErr is what Score returns.
	scoreErr error
	// pingRTTs and pingErr are what Ping returns; pings, if set, records
	// its calls. pingStarted, if set, makes Ping signal on it and wait for
	// its context to end, then send the context's error on pingEnded.
	pingRTTs    []time.Duration
	pingErr     error
	pings       *[]pingCall
	pingStarted chan<- struct{}
	pingEnded   chan<- error
}

type pingCall struct {
	node  peer.ID
	count int
}

type trustCall struct {
	action TrustAction
	node   peer.ID
	reason string
}

// Node IDs the fake backend speaks of.
const (
	fakeSelf = "12D3KooWtest"
	fakePeer = "12D3KooWJhHgZy4DVUv3wp89WCTonoHy4ce4dZ15VER38HUtTsrz"
)

func (fakeBackend) ID() IDInfo {
	return IDInfo{NodeID: "12D3KooWtest", Name: "n", NetworkID: "abcd", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWtest"}, Version: "v"}
}

func (f fakeBackend) Peers() []PeerInfo {
	if f.peers != nil {
		return f.peers
	}
	return []PeerInfo{
		{NodeID: "12D3KooWpeer", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}, Direction: "inbound",
			ConnectedSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Status: PeerStatusVerified,
			Name: "beta", Role: "full", Version: "0.1.0", HandshakeRTTMillis: 1.25,
			Connected: true, LastHeard: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), BlobCount: 7,
			Score: 0.91, RTTMillis: ptr(0.75), Reliability: 0.97},
		{NodeID: "12D3KooWgone", Addrs: []string{"/ip4/127.0.0.1/tcp/3/p2p/12D3KooWgone"}, Status: PeerStatusDisconnected,
			Name: "gamma", Role: "client", Version: "0.1.0", Score: 0.42, Reliability: 0.5,
			LastFailure: &Failure{Reason: "not_allowed", Message: "revoked", At: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}},
	}
}

func ptr[T any](v T) *T { return &v }

// fakeExplanation is what the fake backend's Score answers: a node with
// samples of latency and reliability, none of freshness and penalty.
var fakeExplanation = ScoreExplanation{
	NodeID: fakePeer, Score: 0.4*0.8 + 0.3*0.9 + 0.2*0.5 + 0.1*1, RTTMillis: ptr(2.5), Reliability: 0.9,
	Components: []ScoreComponent{
		{Name: "latency", Weight: 0.4, Value: 0.8, Contribution: 0.4 * 0.8, Samples: 4,
			Last: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Detail: "smoothed RTT 2.5ms against a reference of 10ms"},
		{Name: "reliability", Weight: 0.3, Value: 0.9, Contribution: 0.3 * 0.9, Samples: 3,
			Last: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Detail: "3 successes"},
		{Name: "freshness", Weight: 0.2, Value: 0.5, Contribution: 0.2 * 0.5, Detail: "never heard announcing"},
		{Name: "penalty", Weight: 0.1, Value: 1, Contribution: 0.1, Detail: "penalty 0.00"},
	},
}

func (f fakeBackend) Score(node peer.ID) (ScoreExplanation, error) {
	if f.scoreErr != nil {
		return ScoreExplanation{}, f.scoreErr
	}
	e := fakeExplanation
	e.NodeID = node.String()
	return e, nil
}

func (f fakeBackend) Ping(ctx context.Context, node peer.ID, count int) ([]time.Duration, error) {
	if f.pings != nil {
		*f.pings = append(*f.pings, pingCall{node, count})
	}
	if f.pingStarted != nil {
		f.pingStarted <- struct{}{}
		<-ctx.Done()
		f.pingEnded <- ctx.Err()
		return nil, ctx.Err()
	}
	return f.pingRTTs, f.pingErr
}

func (fakeBackend) Members() []Member {
	return []Member{
		{NodeID: fakePeer, Name: "beta", Role: "full", Addrs: []string{"/ip4/127.0.0.1/tcp/2/p2p/" + fakePeer},
			Version: "0.1.0", BlobCount: 7, BytesStored: 4096, Seq: 42,
			FirstHeard: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), LastHeard: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
			Source: "gossip", Connected: true, Status: PeerStatusVerified},
		// Known only from the saved table: no addresses, not in the registry.
		{NodeID: "12D3KooWsaved", Name: "delta", Source: "saved", Status: MemberStatusUnknown,
			FirstHeard: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastHeard: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// fakeCrawl is what the fake backend's Crawl answers: the start, a node
// it reached and one that did not answer; nil lists the server must turn
// into [].
var fakeCrawl = CrawlResult{
	Nodes: []CrawledNode{
		{NodeID: fakeSelf, Name: "n", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + fakeSelf},
			ConnectedCount: 1, Connected: []string{fakePeer}, Announcements: 2},
		{NodeID: fakePeer, Depth: 1, Via: fakeSelf, Name: "beta", Addrs: []string{"/ip4/127.0.0.1/tcp/2/p2p/" + fakePeer},
			ConnectedCount: 1, Connected: []string{fakeSelf}, Announcements: 2},
		{NodeID: "12D3KooWgone", Depth: 2, Via: fakePeer, Error: "crawl timed out"},
	},
	Members: 2, Dropped: 1, Unvisited: 3, TimedOut: true, ElapsedMillis: 1500.5,
}

func (f fakeBackend) Crawl(ctx context.Context, req CrawlRequest) (CrawlResult, error) {
	if f.crawls != nil {
		*f.crawls = append(*f.crawls, req)
	}
	if f.crawlStarted != nil {
		f.crawlStarted <- struct{}{}
		<-ctx.Done()
		f.crawlEnded <- ctx.Err()
		return CrawlResult{}, ctx.Err()
	}
	if f.crawlErr != nil {
		return CrawlResult{}, f.crawlErr
	}
	return fakeCrawl, nil
}

func (fakeBackend) Trust() TrustList {
	return TrustList{Policy: "manual", Records: []TrustRecord{
		{NodeID: fakePeer, PublicKey: "CAESIA==", Name: "beta", Decision: "allow", Reason: "approved",
			Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{NodeID: "12D3KooWgone", Name: "gamma", Decision: "deny", Reason: "revoked",
			Created: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Expires: time.Date(2026, 2, 2, 3, 4, 6, 0, time.UTC)},
	}}
}

func (fakeBackend) Pending() []PendingRequest {
	return []PendingRequest{{NodeID: fakePeer, Name: "beta", Role: "full", Version: "0.1.0",
		Justification: "lab box 7", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Expires: time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC)}}
}

func (f fakeBackend) TrustAction(action TrustAction, node peer.ID, reason string) (TrustRecord, error) {
	if f.calls != nil {
		*f.calls = append(*f.calls, trustCall{action, node, reason})
	}
	if f.trustErr != nil {
		return TrustRecord{}, f.trustErr
	}
	d := "deny"
	if action == ActionApprove || action == ActionAllow {
		d = "allow"
	}
	return TrustRecord{NodeID: node.String(), Decision: d, Reason: reason, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, nil
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
	return do(t, http.MethodGet, addr, path, auth, "")
}

// do sends a request with body (none if empty) and returns the status and
// the answer's body.
func do(t *testing.T, method, addr, path, auth, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
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
	var (
		calls  []trustCall
		crawls []CrawlRequest
		pings  []pingCall
	)
	addr := serve(t, fakeBackend{calls: &calls, crawls: &crawls, pings: &pings})
	paths := []string{"/v1/id", "/v1/peers", "/v1/members", "/v1/crawl", "/v1/crawl?depth=1", "/v1/connect", "/v1/trust", "/v1/trust/pending", "/nope",
		"/v1/peers/" + fakePeer + "/score", "/v1/peers/" + fakePeer + "/ping", "/v1/peers/" + fakePeer + "/ping?count=1"}
	for _, a := range TrustActions {
		paths = append(paths, "/v1/trust/"+fakePeer+"/"+string(a))
	}
	for _, path := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
				code, body := do(t, method, addr, path, auth, `{"reason": "x"}`)
				require.Equal(t, http.StatusUnauthorized, code, "%s %s with %q", method, path, auth)
				require.Contains(t, body, "API token")
			}
		}
	}
	require.Empty(t, calls, "no trust action without the token")
	require.Empty(t, crawls, "no crawl without the token")
	require.Empty(t, pings, "no ping without the token")
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
	require.Len(t, peers, 2)
	for _, k := range []string{"node_id", "addrs", "direction", "connected_since", "status", "name", "role", "version", "handshake_rtt_ms"} {
		require.Contains(t, peers[0], k)
	}
	require.Equal(t, "2026-01-02T03:04:05Z", peers[0]["connected_since"])
	require.Equal(t, "verified", peers[0]["status"])
	require.InDelta(t, 1.25, peers[0]["handshake_rtt_ms"], 1e-9, "milliseconds, as a float")
	require.NotContains(t, peers[0], "last_failure", "no failure, no field")
	// A node that went away: no connection, so no direction nor since.
	require.Equal(t, "disconnected", peers[1]["status"])
	require.NotContains(t, peers[1], "direction")
	require.NotContains(t, peers[1], "connected_since")
	require.Equal(t, map[string]any{"reason": "not_allowed", "message": "revoked", "at": "2026-01-02T03:04:06Z"}, peers[1]["last_failure"])
	// What the member table adds: connected, last_heard and blob_count.
	require.Equal(t, true, peers[0]["connected"])
	require.Equal(t, "2026-01-02T03:05:00Z", peers[0]["last_heard"])
	require.Equal(t, float64(7), peers[0]["blob_count"])
	require.Equal(t, false, peers[1]["connected"], "connected is always there")
	require.NotContains(t, peers[1], "last_heard", "never heard, no field")
	require.Equal(t, float64(0), peers[1]["blob_count"], "blob_count is always there")

	_, body = get(t, addr, "/v1/trust", "Bearer "+token)
	var trust map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &trust))
	require.Equal(t, "manual", trust["policy"])
	recs := trust["records"].([]any)
	require.Len(t, recs, 2)
	allowed, denied := recs[0].(map[string]any), recs[1].(map[string]any)
	for _, k := range []string{"node_id", "public_key", "name", "decision", "reason", "created"} {
		require.Contains(t, allowed, k)
	}
	require.Equal(t, "allow", allowed["decision"])
	require.NotContains(t, allowed, "expires", "no expiry, no field")
	require.Equal(t, "2026-02-02T03:04:06Z", denied["expires"])

	_, body = get(t, addr, "/v1/trust/pending", "Bearer "+token)
	var pending []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &pending))
	require.Len(t, pending, 1)
	for _, k := range []string{"node_id", "name", "role", "version", "addrs", "justification", "since", "expires"} {
		require.Contains(t, pending[0], k)
	}
	require.Equal(t, []any{}, pending[0]["addrs"], "addrs is a list, even empty")
	require.Equal(t, "lab box 7", pending[0]["justification"])

	code, body := do(t, http.MethodPost, addr, "/v1/trust/"+fakePeer+"/approve", "Bearer "+token, "")
	require.Equal(t, http.StatusOK, code, body)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &rec))
	for _, k := range []string{"node_id", "public_key", "name", "decision", "reason", "created"} {
		require.Contains(t, rec, k)
	}
	require.Equal(t, fakePeer, rec["node_id"])
	require.Equal(t, "allow", rec["decision"])
}

func TestTrustActions(t *testing.T) {
	var calls []trustCall
	addr := serve(t, fakeBackend{calls: &calls})
	auth := "Bearer " + token
	for _, a := range TrustActions {
		for _, body := range []string{"", "{}", `{"reason": "because"}`} {
			calls = nil
			code, resp := do(t, http.MethodPost, addr, "/v1/trust/"+fakePeer+"/"+string(a), auth, body)
			require.Equal(t, http.StatusOK, code, "%s with %q: %s", a, body, resp)
			require.Len(t, calls, 1)
			require.Equal(t, a, calls[0].action)
			require.Equal(t, fakePeer, calls[0].node.String())
			if strings.Contains(body, "because") {
				require.Equal(t, "because", calls[0].reason)
			} else {
				require.Empty(t, calls[0].reason)
			}
		}
	}

	calls = nil
	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"malformed node ID", "/v1/trust/not-a-node-id/approve", "", "node ID"},
		{"unknown action", "/v1/trust/" + fakePeer + "/promote", "", "unknown trust action"},
		{"body not JSON", "/v1/trust/" + fakePeer + "/deny", "reason", "reason"},
		{"unknown body field", "/v1/trust/" + fakePeer + "/deny", `{"raeson": "x"}`, "raeson"},
		{"reason too long", "/v1/trust/" + fakePeer + "/deny", `{"reason": "` + strings.Repeat("x", MaxReasonLen+1) + `"}`, "at most"},
	} {
		code, body := do(t, http.MethodPost, addr, tt.path, auth, tt.body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", tt.name, body)
		require.Contains(t, body, tt.want, tt.name)
	}
	require.Empty(t, calls, "a bad request reaches no backend")

	// Reading routes are GET only, actions POST only.
	code, _ := do(t, http.MethodPost, addr, "/v1/trust", auth, "")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, _ = do(t, http.MethodGet, addr, "/v1/trust/"+fakePeer+"/approve", auth, "")
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestTrustActionErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"not pending", Mark(errors.New("approve x: node is not awaiting approval"), ErrNotFound), http.StatusNotFound},
		{"self", Mark(errors.New("deny x: that is this node"), ErrBadRequest), http.StatusBadRequest},
		{"disk full", errors.New("save trust store: no space left on device"), http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, fakeBackend{trustErr: tt.err})
			_, err := NewClient(addr, token).Approve(context.Background(), fakePeer, "")
			var se *StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.code, se.Code)
			require.Equal(t, tt.err.Error(), se.Message, "the message is the backend's, unchanged")
		})
	}
}

func TestMark(t *testing.T) {
	inner := errors.New("inner")
	err := Mark(fmt.Errorf("outer: %w", inner), ErrNotFound)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, err, inner)
	require.NotErrorIs(t, err, ErrBadRequest)
	require.Equal(t, "outer: inner", err.Error())
	require.NoError(t, Mark(nil, ErrNotFound))
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
	require.Equal(t, fakeBackend{}.Peers(), peers)
	trust, err := c.Trust(ctx)
	require.NoError(t, err)
	require.Equal(t, fakeBackend{}.Trust(), trust)
	pending, err := c.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, "lab box 7", pending[0].Justification)
	for a, call := range map[TrustAction]func(context.Context, string, string) (TrustRecord, error){
		ActionApprove: c.Approve, ActionReject: c.Reject, ActionRevoke: c.Revoke, ActionAllow: c.Allow, ActionDeny: c.Deny,
	} {
		rec, err := call(ctx, fakePeer, "why "+string(a))
		require.NoError(t, err, a)
		require.Equal(t, fakePeer, rec.NodeID)
		require.Equal(t, "why "+string(a), rec.Reason)
	}
	_, err = c.TrustAction(ctx, "promote", fakePeer, "")
	var bad *StatusError
	require.ErrorAs(t, err, &bad)
	require.Equal(t, http.StatusBadRequest, bad.Code)
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

// A request no route takes gets a JSON error like every other: 404, or 405
// with the methods allowed.
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	addr := serve(t, newMemBlobs())
	code, body := do(t, http.MethodGet, addr, "/v1/nothing-here", "Bearer "+token, "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "no API route GET /v1/nothing-here: the routes are listed in the README (The control API)", errorMessage(t, []byte(body)))

	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/peers", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "PUT is not allowed on /v1/peers: use GET, HEAD", errorMessage(t, b))

	// Without the token, an unknown route is still 401 first.
	code, _ = do(t, http.MethodGet, addr, "/v1/nothing-here", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
}
