package node

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// gaugeValues gathers the live-node collector alone, through a pedantic
// registry (which checks the metrics against their descriptions), by
// metric name and status label.
func gaugeValues(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(liveNodes))
	fams, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// The gauges sum over the nodes alive in the process: a node counts from
// New to Close, and several nodes register nothing twice.
func TestMetricsGaugesSumOverLiveNodes(t *testing.T) {
	before := gaugeValues(t)
	for _, s := range statusNames {
		require.Contains(t, before, "peernode_node_peers/"+s, "a series for every status")
	}
	newNode := func(name string) *Node {
		n, err := New(LocalTestConfig(filepath.Join(t.TempDir(), name)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := newNode("a"), newNode("b")
	blob := bytes.Repeat([]byte("metrics"), 1000)
	for _, n := range []*Node{a, b} {
		_, err := n.Store().Put(context.Background(), bytes.NewReader(blob), int64(len(blob)), cid.Undef)
		require.NoError(t, err)
	}
	during := gaugeValues(t)
	require.Equal(t, before["peernode_storage_blobs"]+2, during["peernode_storage_blobs"])
	require.Equal(t, before["peernode_storage_stored_bytes"]+2*float64(len(blob)), during["peernode_storage_stored_bytes"])
	require.Equal(t, before["peernode_scoring_peer_score"], during["peernode_scoring_peer_score"], "no verified peers")

	require.NoError(t, a.Close())
	after := gaugeValues(t)
	require.Equal(t, before["peernode_storage_blobs"]+1, after["peernode_storage_blobs"], "a closed node no longer counts")
	require.Equal(t, before["peernode_storage_stored_bytes"]+float64(len(blob)), after["peernode_storage_stored_bytes"])
}
