package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics. Everything goes to Prometheus' default registry, which the
// control API's /metrics (and MetricsAddr's) serves together with the
// handshake's, discovery's and storage's counters, libp2p's own collectors
// (libp2p.New registers them there) and Go's runtime and process metrics.
//
// Counters are package-level and shared by every node of the process.
// Gauges are computed at scrape time by one collector, registered once,
// that walks the nodes alive in the process (New adds a node, Close
// removes it) and sums over them: a daemon runs one node, so they are that
// node's; a test process holding several nodes sees their sum, as it does
// for the counters. Nothing is registered per node, so nodes come and go
// without duplicate registrations.
var violationsTotal = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "peernode", Subsystem: "node", Name: "violations_total",
	Help: "Streams opened by nodes that were not verified (gate violations); too many in the violation window ban the node.",
})

// checks counts the blob checks an operator asked for, by result.
var checks = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "peernode", Subsystem: "storage", Name: "checks_total",
	Help: "Local blobs hashed again on request (peernode blobs check), by result: ok, repaired (the outboard was rebuilt " +
		"from the data) or corrupt (the data no longer matched its ID and was moved out of the store).",
}, []string{"result"})

// scoreBuckets are the upper bounds of the peer-score histogram.
var scoreBuckets = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}

// Descriptions of the gauges the live-node collector computes.
var (
	peersDesc = prometheus.NewDesc("peernode_node_peers",
		"Nodes in the identity registry by status (new, handshaking, pending, verified, closing, error, disconnected).",
		[]string{"status"}, nil)
	membersDesc = prometheus.NewDesc("peernode_node_members",
		"Members in the member table.", nil, nil)
	blobsDesc = prometheus.NewDesc("peernode_storage_blobs",
		"Blobs in the local store.", nil, nil)
	storedBytesDesc = prometheus.NewDesc("peernode_storage_stored_bytes",
		"Bytes of blob content in the local store.", nil, nil)
	scoreDesc = prometheus.NewDesc("peernode_scoring_peer_score",
		"Current scores (0 to 1) of the verified, connected peers, at scrape time.", nil, nil)
	resConnsDesc = prometheus.NewDesc("peernode_resources_connections",
		"Connections held in the libp2p resource manager's scope (system: all; transient: not yet upgraded and tied to a peer), by direction.",
		[]string{"scope", "direction"}, nil)
	resStreamsDesc = prometheus.NewDesc("peernode_resources_streams",
		"Streams held in the libp2p resource manager's scope (system: all; transient: not yet negotiated), by direction.",
		[]string{"scope", "direction"}, nil)
	resMemoryDesc = prometheus.NewDesc("peernode_resources_memory_bytes",
		"Memory reserved in the libp2p resource manager's scope.", []string{"scope"}, nil)
	resFDsDesc = prometheus.NewDesc("peernode_resources_fds",
		"File descriptors reserved in the libp2p resource manager's scope.", []string{"scope"}, nil)
	resLimitDesc = prometheus.NewDesc("peernode_resources_limit",
		"The libp2p resource manager's node-wide (system) limits: connections, streams, memory_bytes, fds. "+
			"Usage close to a limit means new connections or streams are about to be refused.",
		[]string{"resource"}, nil)
)

// resourceScopes are the resource manager's scopes the gauges read.
var resourceScopes = [...]string{"system", "transient"}

func init() {
	prometheus.MustRegister(violationsTotal, checks, liveNodes)
}

// nodeSet is the collector of the gauges: the nodes alive in the process.
type nodeSet struct {
	mu    sync.Mutex
	nodes map[*Node]struct{}
}

var liveNodes = &nodeSet{nodes: map[*Node]struct{}{}}

func (s *nodeSet) add(n *Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[n] = struct{}{}
}

func (s *nodeSet) remove(n *Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, n)
}

func (s *nodeSet) snapshot() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Node, 0, len(s.nodes))
	for n := range s.nodes {
		out = append(out, n)
	}
	return out
}

// Describe implements prometheus.Collector.
func (s *nodeSet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{peersDesc, membersDesc, blobsDesc, storedBytesDesc, scoreDesc,
		resConnsDesc, resStreamsDesc, resMemoryDesc, resFDsDesc, resLimitDesc} {
		ch <- d
	}
}

// gauges are the scrape-time figures, summed over nodes.
type gauges struct {
	statuses          [len(statusNames)]int
	members, blobs    int
	storedBytes       int64
	scoreCount        uint64
	scoreSum          float64
	scoreBucketCounts []uint64 // cumulative, per scoreBuckets
	// usage per resourceScopes; limits of the system scope
	usage                           [len(resourceScopes)]network.ScopeStat
	connLimit, streamLimit, fdLimit int
	memoryLimit                     int64
}

// Collect implements prometheus.Collector. It reads only in-memory state
// (each piece under its own lock, none held across another), so it is
// cheap and safe while a node closes.
func (s *nodeSet) Collect(ch chan<- prometheus.Metric) {
	g := gauges{scoreBucketCounts: make([]uint64, len(scoreBuckets))}
	for _, n := range s.snapshot() {
		n.addGauges(&g)
	}
	for st, c := range g.statuses {
		ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(c), Status(st).String())
	}
	ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(g.members))
	ch <- prometheus.MustNewConstMetric(blobsDesc, prometheus.GaugeValue, float64(g.blobs))
	ch <- prometheus.MustNewConstMetric(storedBytesDesc, prometheus.GaugeValue, float64(g.storedBytes))
	buckets := make(map[float64]uint64, len(scoreBuckets))
	for i, b := range scoreBuckets {
		buckets[b] = g.scoreBucketCounts[i]
	}
	ch <- prometheus.MustNewConstHistogram(scoreDesc, g.scoreCount, g.scoreSum, buckets)
	for i, scope := range resourceScopes {
		u := g.usage[i]
		ch <- prometheus.MustNewConstMetric(resConnsDesc, prometheus.GaugeValue, float64(u.NumConnsInbound), scope, "inbound")
		ch <- prometheus.MustNewConstMetric(resConnsDesc, prometheus.GaugeValue, float64(u.NumConnsOutbound), scope, "outbound")
		ch <- prometheus.MustNewConstMetric(resStreamsDesc, prometheus.GaugeValue, float64(u.NumStreamsInbound), scope, "inbound")
		ch <- prometheus.MustNewConstMetric(resStreamsDesc, prometheus.GaugeValue, float64(u.NumStreamsOutbound), scope, "outbound")
		ch <- prometheus.MustNewConstMetric(resMemoryDesc, prometheus.GaugeValue, float64(u.Memory), scope)
		ch <- prometheus.MustNewConstMetric(resFDsDesc, prometheus.GaugeValue, float64(u.NumFD), scope)
	}
	ch <- prometheus.MustNewConstMetric(resLimitDesc, prometheus.GaugeValue, float64(g.connLimit), "connections")
	ch <- prometheus.MustNewConstMetric(resLimitDesc, prometheus.GaugeValue, float64(g.streamLimit), "streams")
	ch <- prometheus.MustNewConstMetric(resLimitDesc, prometheus.GaugeValue, float64(g.memoryLimit), "memory_bytes")
	ch <- prometheus.MustNewConstMetric(resLimitDesc, prometheus.GaugeValue, float64(g.fdLimit), "fds")
}

// addResources adds the resource manager's usage and system limits to g.
func addResources(rm network.ResourceManager, g *gauges) {
	add := func(i int) func(network.ResourceScope) error {
		return func(s network.ResourceScope) error {
			st := s.Stat()
			u := &g.usage[i]
			u.NumConnsInbound += st.NumConnsInbound
			u.NumConnsOutbound += st.NumConnsOutbound
			u.NumStreamsInbound += st.NumStreamsInbound
			u.NumStreamsOutbound += st.NumStreamsOutbound
			u.Memory += st.Memory
			u.NumFD += st.NumFD
			if l, ok := s.(rcmgr.ResourceScopeLimiter); ok && i == 0 {
				lim := l.Limit()
				g.connLimit += lim.GetConnTotalLimit()
				g.streamLimit += lim.GetStreamTotalLimit()
				g.memoryLimit += lim.GetMemoryLimit()
				g.fdLimit += lim.GetFDLimit()
			}
			return nil
		}
	}
	_ = rm.ViewSystem(add(0))
	_ = rm.ViewTransient(add(1))
}

// addGauges adds this node's figures to g.
func (n *Node) addGauges(g *gauges) {
	statuses, verified := n.reg.census()
	for i, c := range statuses {
		g.statuses[i] += c
	}
	for _, p := range verified {
		s := n.book.Score(p)
		g.scoreCount++
		g.scoreSum += s
		for i, b := range scoreBuckets {
			if s <= b {
				g.scoreBucketCounts[i]++
			}
		}
	}
	addResources(n.host.Network().ResourceManager(), g)
	g.members += n.table.Len()
	if n.blobs != nil {
		count, bytes := n.blobs.store.Usage()
		g.blobs += count
		g.storedBytes += bytes
	}
}

// census counts the registry's nodes by status and lists the Verified ones
// with a live connection.
func (r *registry) census() (statuses [len(statusNames)]int, verified []peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, rec := range r.peers {
		if int(rec.status) < len(statuses) {
			statuses[rec.status]++
		}
		if rec.status == StatusVerified && len(rec.conns) > 0 {
			verified = append(verified, p)
		}
	}
	return statuses, verified
}

// metricsServer serves /metrics without a token on Config.MetricsAddr.
type metricsServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// startMetrics listens on addr and serves the default registry's metrics
// until close.
func startMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics cannot listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("metrics server stopped", "err", err)
		}
	}()
	log.Infow("serving metrics without a token", "addr", "http://"+s.addr+"/metrics")
	return s, nil
}

// close stops the server, waiting up to apiShutdownTimeout for scrapes in
// flight.
func (s *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), apiShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// MetricsAddr is the address /metrics is served on without a token, or ""
// when Config.MetricsAddr is empty or the node is not started.
func (n *Node) MetricsAddr() string {
	if n.metrics == nil {
		return ""
	}
	return n.metrics.addr
}
