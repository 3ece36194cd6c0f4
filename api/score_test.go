package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

func TestPeersScoreFields(t *testing.T) {
	addr := serve(t, fakeBackend{})
	code, body := get(t, addr, "/v1/peers", "Bearer "+token)
	require.Equal(t, http.StatusOK, code, body)
	var peers []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &peers))
	require.Len(t, peers, 2)
	require.InDelta(t, 0.91, peers[0]["score"], 1e-9)
	require.InDelta(t, 0.75, peers[0]["rtt_ms"], 1e-9, "milliseconds, as a float")
	require.InDelta(t, 0.97, peers[0]["reliability"], 1e-9)
	require.InDelta(t, 0.42, peers[1]["score"], 1e-9)
	require.NotContains(t, peers[1], "rtt_ms", "no RTT sample, no field")
	require.InDelta(t, 0.5, peers[1]["reliability"], 1e-9, "reliability is always there")
	// The fields the list had before scores are all still there.
	for _, k := range []string{"node_id", "addrs", "status", "name", "role", "version", "handshake_rtt_ms", "connected", "blob_count"} {
		require.Contains(t, peers[1], k)
	}
}

func TestSortPeers(t *testing.T) {
	ps := []PeerInfo{
		{NodeID: "e", Score: 0.5, Status: PeerStatusDisconnected},
		{NodeID: "d", Score: 0.5, Status: PeerStatusVerified},
		{NodeID: "a", Score: 0.1, Status: PeerStatusVerified},
		{NodeID: "c", Score: 0.9, Status: PeerStatusPending},
		{NodeID: "b", Score: 0.5, Status: PeerStatusDisconnected},
		{NodeID: "f", Score: 0.5, Status: PeerStatusVerified},
	}
	SortPeers(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.NodeID)
	}
	require.Equal(t, []string{"c", "d", "f", "b", "e", "a"}, got, "best score first; ties: verified, then node ID")
}

// The server sorts whatever order the backend lists the peers in.
func TestPeersSortedByScore(t *testing.T) {
	addr := serve(t, fakeBackend{peers: []PeerInfo{
		{NodeID: "low", Score: 0.2, Status: PeerStatusVerified},
		{NodeID: "tie-unverified", Score: 0.6, Status: PeerStatusDisconnected},
		{NodeID: "tie-verified", Score: 0.6, Status: PeerStatusVerified},
		{NodeID: "high", Score: 0.8, Status: PeerStatusDisconnected},
	}})
	peers, err := NewClient(addr, token).Peers(context.Background())
	require.NoError(t, err)
	var got []string
	for _, p := range peers {
		got = append(got, p.NodeID)
	}
	require.Equal(t, []string{"high", "tie-verified", "tie-unverified", "low"}, got)
}

func TestScoreEndpoint(t *testing.T) {
	addr := serve(t, fakeBackend{})
	auth := "Bearer " + token
	code, body := get(t, addr, "/v1/peers/"+fakePeer+"/score", auth)
	require.Equal(t, http.StatusOK, code, body)
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	for _, k := range []string{"node_id", "score", "rtt_ms", "reliability", "components"} {
		require.Contains(t, e, k)
	}
	require.Equal(t, fakePeer, e["node_id"])
	require.InDelta(t, 2.5, e["rtt_ms"], 1e-9)
	require.InDelta(t, 0.9, e["reliability"], 1e-9)
	comps := e["components"].([]any)
	require.Len(t, comps, 4)
	sum := 0.0
	for i, name := range []string{"latency", "reliability", "freshness", "penalty"} {
		c := comps[i].(map[string]any)
		require.Equal(t, name, c["name"])
		for _, k := range []string{"weight", "value", "contribution", "samples", "detail"} {
			require.Contains(t, c, k, name)
		}
		sum += c["contribution"].(float64)
	}
	require.InDelta(t, e["score"], sum, 1e-9, "the contributions add up to the score")
	require.Equal(t, "2026-01-02T03:04:05Z", comps[0].(map[string]any)["last"], "RFC 3339")
	require.NotContains(t, comps[2], "last", "no sample, no last")
	require.Equal(t, float64(0), comps[2].(map[string]any)["samples"])

	got, err := NewClient(addr, token).Score(context.Background(), fakePeer)
	require.NoError(t, err)
	require.Equal(t, fakeExplanation, got)

	code, body = get(t, addr, "/v1/peers/not-a-node-id/score", auth)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "node ID")
	code, _ = do(t, http.MethodPost, addr, "/v1/peers/"+fakePeer+"/score", auth, "")
	require.Equal(t, http.StatusMethodNotAllowed, code, "score is GET only")
}

func TestScoreErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"unknown node", Mark(errors.New("score of x: unknown node"), ErrNotFound), http.StatusNotFound},
		{"this node", Mark(errors.New("score of x: that is this node"), ErrBadRequest), http.StatusBadRequest},
		{"broken", errors.New("node is closing"), http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, fakeBackend{scoreErr: tt.err})
			_, err := NewClient(addr, token).Score(context.Background(), fakePeer)
			var se *StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.code, se.Code)
			require.Equal(t, tt.err.Error(), se.Message)
		})
	}
}

func TestParsePingQuery(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  int
		err   string
	}{
		{"", DefaultPingCount, ""},
		{"count=1", 1, ""},
		{"count=100", 100, ""},
		{"count=0", 0, "ping count 0: want an integer from 1 to 100"},
		{"count=101", 0, "ping count 101"},
		{"count=-1", 0, "ping count -1"},
		{"count=two", 0, "ping count two"},
		{"count=", 0, "ping count :"},
		{"count=1&count=2", 0, "given 2 times"},
		{"cnt=2", 0, `unknown ping parameter "cnt"`},
		{"count=%zz", 0, "ping query"},
	} {
		n, err := ParsePingQuery(tt.query)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, tt.query)
			continue
		}
		require.NoError(t, err, tt.query)
		require.Equal(t, tt.want, n, tt.query)
	}
	var ce *PingCountError
	_, err := ParsePingQuery("count=0")
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "0", ce.Value)
}

func TestPingEndpoint(t *testing.T) {
	var pings []pingCall
	addr := serve(t, fakeBackend{pings: &pings, pingRTTs: []time.Duration{1500 * time.Microsecond, 2 * time.Millisecond}})
	auth := "Bearer " + token
	path := "/v1/peers/" + fakePeer + "/ping"

	code, body := do(t, http.MethodPost, addr, path, auth, "")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"node_id": "`+fakePeer+`", "rtts_ms": [1.5, 2]}`, body, "no error field on success")
	require.Equal(t, []pingCall{{node: mustDecode(t, fakePeer), count: DefaultPingCount}}, pings, "count defaults to 3")

	pings = nil
	code, body = do(t, http.MethodPost, addr, path+"?count=100", auth, "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 100, pings[0].count)

	pings = nil
	for _, tt := range []struct{ path, want string }{
		{path + "?count=0", "ping count 0"},
		{path + "?count=101", "ping count 101"},
		{path + "?count=x", "ping count x"},
		{path + "?count=1&count=2", "given 2 times"},
		{path + "?timeout=1s", "unknown ping parameter"},
		{"/v1/peers/not-a-node-id/ping", "node ID"},
	} {
		code, body := do(t, http.MethodPost, addr, tt.path, auth, "")
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", tt.path, body)
		require.Contains(t, body, tt.want, tt.path)
	}
	require.Empty(t, pings, "a bad request reaches no backend")
	code, _ = get(t, addr, path, auth)
	require.Equal(t, http.StatusMethodNotAllowed, code, "ping is POST only")
}

func TestPingFailures(t *testing.T) {
	ctx := context.Background()
	// The second ping failed: 502, the first RTT and the error.
	addr := serve(t, fakeBackend{pingRTTs: []time.Duration{time.Millisecond}, pingErr: errors.New("ping x: stream reset")})
	code, body := do(t, http.MethodPost, addr, "/v1/peers/"+fakePeer+"/ping?count=3", "Bearer "+token, "")
	require.Equal(t, http.StatusBadGateway, code, body)
	require.JSONEq(t, `{"node_id": "`+fakePeer+`", "rtts_ms": [1], "error": "ping x: stream reset"}`, body)

	res, err := NewClient(addr, token).Ping(ctx, fakePeer, 3)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadGateway, se.Code)
	require.Equal(t, "ping x: stream reset", se.Message)
	require.Equal(t, PingResult{NodeID: fakePeer, RTTsMillis: []float64{1}, Error: "ping x: stream reset"}, res,
		"the client keeps the partial answer")

	// No ping succeeded: the list is empty, not null.
	addr = serve(t, fakeBackend{pingErr: errors.New("unreachable")})
	code, body = do(t, http.MethodPost, addr, "/v1/peers/"+fakePeer+"/ping", "Bearer "+token, "")
	require.Equal(t, http.StatusBadGateway, code, body)
	require.JSONEq(t, `{"node_id": "`+fakePeer+`", "rtts_ms": [], "error": "unreachable"}`, body)

	// The caller's fault (this node itself): 400, no result.
	addr = serve(t, fakeBackend{pingErr: Mark(errors.New("ping x: that is this node"), ErrBadRequest)})
	res, err = NewClient(addr, token).Ping(ctx, fakePeer, 1)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)
	require.Equal(t, "ping x: that is this node", se.Message)
	require.Empty(t, res.RTTsMillis)

	// Success through the client.
	addr = serve(t, fakeBackend{pingRTTs: []time.Duration{250 * time.Microsecond}})
	res, err = NewClient(addr, token).Ping(ctx, fakePeer, 1)
	require.NoError(t, err)
	require.Equal(t, PingResult{NodeID: fakePeer, RTTsMillis: []float64{0.25}}, res)
}

// A caller that goes away ends the pings: the request's context bounds
// them.
func TestPingEndsWithTheRequest(t *testing.T) {
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	addr := serve(t, fakeBackend{pingStarted: started, pingEnded: ended})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := NewClient(addr, token).Ping(ctx, fakePeer, 5)
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the ping never reached the backend")
	}
	cancel()
	select {
	case err := <-ended:
		require.ErrorIs(t, err, context.Canceled, "the backend's context ends with the request")
	case <-time.After(10 * time.Second):
		t.Fatal("the ping outlived its request")
	}
	require.ErrorIs(t, <-errc, context.Canceled)
}

func TestHasSamples(t *testing.T) {
	require.True(t, fakeExplanation.HasSamples())
	none := fakeExplanation
	none.Components = []ScoreComponent{{Name: "latency"}, {Name: "reliability"}}
	require.False(t, none.HasSamples())
	require.False(t, ScoreExplanation{}.HasSamples())
}

func mustDecode(t *testing.T, s string) peer.ID {
	t.Helper()
	p, err := peer.Decode(s)
	require.NoError(t, err)
	return p
}
