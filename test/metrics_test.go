package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"peernode/api"
	"peernode/node"
	"peernode/protocols/storage/store"
)

// metrics is one scrape, parsed.
type metrics map[string]*dto.MetricFamily

// scrape GETs url with the token (if any) and parses the answer as
// Prometheus text: a body that does not parse fails the test.
func scrape(t *testing.T, url, token string) metrics {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: WaitTimeout}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "the metrics must parse as Prometheus text")
	return fams
}

// sum adds the values of the series of name whose labels include want.
func (m metrics) sum(name string, want map[string]string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var total float64
next:
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}

// histogram returns the one series of a histogram without labels.
func (m metrics) histogram(t *testing.T, name string) *dto.Histogram {
	t.Helper()
	f := m[name]
	require.NotNil(t, f, "%s missing", name)
	require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType())
	require.Len(t, f.GetMetric(), 1)
	return f.GetMetric()[0].GetHistogram()
}

func (m metrics) withPrefix(prefix string) []string {
	var out []string
	for name := range m {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// /metrics on the API parses as Prometheus text, and its handshake,
// storage and discovery counters move when a node joins and a blob is put
// on two nodes. Counters and gauges are per process (summed over the nodes
// of this test process, which other tests share), so the checks are lower
// bounds, plus what must hold within one scrape.
func TestMetricsMoveWithHandshakeAndPut(t *testing.T) {
	t.Parallel()
	nodes := StartNodes(t, 2, func(i int, cfg *node.Config, started []*node.Node) {
		if i == 1 {
			cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(started[0]))
		}
	})
	WaitVerified(t, nodes[0], nodes[1].ID())
	WaitVerified(t, nodes[1], nodes[0].ID())
	tok, err := api.ReadToken(nodes[0].Config().DataDir)
	require.NoError(t, err)
	url := "http://" + nodes[0].APIAddr() + "/metrics"

	verifiedHandshakes := map[string]string{"result": "verified"}
	putOK := func(side string) map[string]string {
		return map[string]string{"op": "put", "side": side, "result": "ok"}
	}
	sent, received := map[string]string{"direction": "sent"}, map[string]string{"direction": "received"}
	before := scrape(t, url, tok)
	require.GreaterOrEqual(t, before.sum("peernode_handshake_results_total", verifiedHandshakes), 2.0)

	// A third node joins (a handshake), and node 0 puts a blob on itself
	// and one other node.
	third := StartNode(t, withBootstrap(Config(t, "node2"), nodes[0]))
	WaitVerified(t, nodes[0], third.ID())
	WaitVerified(t, third, nodes[0].ID())
	data := make([]byte, 100<<10)
	_, err = rand.Read(data)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	res, err := nodes[0].PutBlob(ctx, bytes.NewReader(data), int64(len(data)), 2)
	require.NoError(t, err)
	require.Len(t, res.Holders, 2)
	enc := float64(store.EncodedLen(int64(len(data)), 0, int64(len(data))))

	// The holder counts its served put once it answered; node 0 may read
	// the answer first.
	var after metrics
	require.Eventually(t, func() bool {
		after = scrape(t, url, tok)
		return after.sum("peernode_storage_operations_total", putOK("served")) > before.sum("peernode_storage_operations_total", putOK("served")) &&
			after.sum("peernode_discovery_announcements_total", map[string]string{"direction": "sent", "result": "accepted"}) > 0 &&
			after.sum("peernode_discovery_announcements_total", map[string]string{"direction": "received", "result": "accepted"}) > 0
	}, WaitTimeout, 20*time.Millisecond, "served put or announcements never counted")

	require.GreaterOrEqual(t, after.sum("peernode_handshake_results_total", verifiedHandshakes),
		before.sum("peernode_handshake_results_total", verifiedHandshakes)+2, "the third node's handshake, on both sides")
	require.Greater(t, after.sum("peernode_storage_operations_total", putOK("client")), before.sum("peernode_storage_operations_total", putOK("client")))
	require.GreaterOrEqual(t, after.sum("peernode_storage_bytes_total", sent), before.sum("peernode_storage_bytes_total", sent)+enc)
	require.GreaterOrEqual(t, after.sum("peernode_storage_bytes_total", received), before.sum("peernode_storage_bytes_total", received)+enc)
	require.Greater(t, after.sum("peernode_discovery_announcements_total", map[string]string{"direction": "sent", "result": "accepted"}), 0.0)
	require.Greater(t, after.sum("peernode_discovery_announcements_total", map[string]string{"direction": "received", "result": "accepted"}), 0.0)
	require.NotNil(t, after["peernode_discovery_prunes_total"])
	require.NotNil(t, after["peernode_node_violations_total"])
	require.NotNil(t, after["peernode_handshake_duration_seconds"])

	// Gauges: node 0 alone has two verified peers, a member table and the
	// blob; the holder has it too.
	verified := after.sum("peernode_node_peers", map[string]string{"status": "verified"})
	require.GreaterOrEqual(t, verified, 2.0)
	require.Len(t, after["peernode_node_peers"].GetMetric(), 7, "one series per status")
	require.GreaterOrEqual(t, after.sum("peernode_node_members", nil), 2.0)
	require.GreaterOrEqual(t, after.sum("peernode_storage_blobs", nil), 2.0)
	require.GreaterOrEqual(t, after.sum("peernode_storage_stored_bytes", nil), 2.0*float64(len(data)))
	scores := after.histogram(t, "peernode_scoring_peer_score")
	require.EqualValues(t, verified, scores.GetSampleCount(), "one score per verified peer, in the same scrape")
	buckets := scores.GetBucket()
	require.Len(t, buckets, 11, "0.1 to 1 by 0.1, and +Inf")
	require.InDelta(t, 1.0, buckets[9].GetUpperBound(), 1e-9)
	require.Equal(t, scores.GetSampleCount(), buckets[9].GetCumulativeCount(), "every score is at most 1")
	require.LessOrEqual(t, scores.GetSampleSum(), float64(scores.GetSampleCount()))

	// The resource manager's usage and limits, summed over the live nodes
	// of this process: node 0 alone holds two connections.
	conns := after.sum("peernode_resources_connections", map[string]string{"scope": "system"})
	require.GreaterOrEqual(t, conns, 2.0)
	require.GreaterOrEqual(t, after.sum("peernode_resources_limit", map[string]string{"resource": "connections"}), conns)
	require.Greater(t, after.sum("peernode_resources_limit", map[string]string{"resource": "memory_bytes"}), 0.0)
	require.Len(t, after["peernode_resources_streams"].GetMetric(), 4, "system and transient, inbound and outbound")
	require.NotNil(t, after["peernode_resources_fds"])
	require.NotNil(t, after["peernode_resources_memory_bytes"])

	// libp2p's own collectors, and Go's.
	require.NotEmpty(t, after.withPrefix("libp2p_swarm_"), "swarm metrics")
	// libp2p's gauges are set by whichever node reported last (every node
	// of this process shares the registry, and other tests close theirs),
	// so only its counters can be checked for movement.
	require.Greater(t, after.sum("libp2p_swarm_connections_opened_total", nil), before.sum("libp2p_swarm_connections_opened_total", nil),
		"the third node's connection")
	require.NotNil(t, after["go_goroutines"])

	// A blob check through the API counts its result.
	okChecks := map[string]string{"result": "ok"}
	check, err := api.NewClient(nodes[0].APIAddr(), tok).CheckBlob(ctx, res.Info.ID.String())
	require.NoError(t, err)
	require.Equal(t, api.CheckOK, check.Result)
	require.GreaterOrEqual(t, scrape(t, url, tok).sum("peernode_storage_checks_total", okChecks), after.sum("peernode_storage_checks_total", okChecks)+1)
}

func withBootstrap(cfg node.Config, peers ...*node.Node) node.Config {
	for _, p := range peers {
		cfg.Bootstrap = append(cfg.Bootstrap, AddrInfo(p))
	}
	return cfg
}

// MetricsAddr serves /metrics without a token, and nothing else; Close
// stops it.
func TestMetricsListenerWithoutToken(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "metrics")
	cfg.MetricsAddr = "127.0.0.1:0"
	n, err := node.New(cfg)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = n.Close()
		}
	})
	require.Empty(t, n.MetricsAddr(), "not listening before Start")
	require.NoError(t, n.Start())
	addr := n.MetricsAddr()
	require.NotEmpty(t, addr)
	require.NotEqual(t, n.APIAddr(), addr)

	m := scrape(t, "http://"+addr+"/metrics", "")
	require.NotNil(t, m["peernode_node_peers"])
	require.NotNil(t, m["peernode_node_violations_total"])

	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: WaitTimeout}
	resp, err := c.Get("http://" + addr + "/v1/id")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the control API is not served without its token")

	closed = true
	require.NoError(t, n.Close())
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	var opErr *net.OpError
	require.True(t, errors.As(err, &opErr), "the metrics listener must be closed: %v", err)
}

func TestMetricsAddrInvalid(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "bad")
	cfg.MetricsAddr = "no-port"
	_, err := node.New(cfg)
	require.ErrorIs(t, err, node.ErrInvalidConfig)
}
