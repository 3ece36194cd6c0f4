package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peernode/internal/netdelay"
	"peernode/node"
	"peernode/protocols/handshake"
	"peernode/protocols/storage"
	storagepb "peernode/protocols/storage/pb"
	"peernode/scoring"
)

func randomBlob(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func putBlob(t testing.TB, n *node.Node, data []byte, replicas int) node.PutResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	res, err := n.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), replicas)
	require.NoError(t, err)
	return res
}

// readBlob opens id on n and reads [off, off+length) (length < 0: to the
// end).
func readBlob(t testing.TB, n *node.Node, id cid.Cid, off, length int64) ([]byte, *node.Blob, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	b, err := n.OpenBlob(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if length < 0 {
		length = b.Size - off
	}
	var buf bytes.Buffer
	err = b.WriteRange(ctx, &buf, off, length)
	return buf.Bytes(), b, err
}

// startPair starts two verified nodes.
func startPair(t *testing.T) (a, b *node.Node) {
	nodes := startStar(t, 2, nil)
	WaitVerified(t, nodes[0], nodes[1].ID())
	WaitVerified(t, nodes[1], nodes[0].ID())
	return nodes[0], nodes[1]
}

// Blobs of every awkward size travel whole and in ranges between two nodes.
func TestBlobRoundTrips(t *testing.T) {
	t.Parallel()
	a, b := startPair(t)
	for _, size := range []int{0, 1, 1<<20 + 1, 64 << 20} {
		data := randomBlob(t, size)
		res := putBlob(t, a, data, 2)
		require.Equal(t, []peer.ID{a.ID(), b.ID()}, res.Holders)
		require.EqualValues(t, size, res.Info.Size)
		require.NoError(t, b.Store().Verify(res.Info.ID))

		// b reads its own copy; a third party's read is the next test's.
		got, blob, err := readBlob(t, b, res.Info.ID, 0, -1)
		require.NoError(t, err)
		require.True(t, blob.Local)
		require.True(t, bytes.Equal(data, got), "%d bytes differ", size)
		if size > 2 {
			got, _, err = readBlob(t, b, res.Info.ID, 1, int64(size-2))
			require.NoError(t, err)
			require.True(t, bytes.Equal(data[1:size-1], got))
		}
		// Delete b's copy: b now fetches it from a, whole and ranged.
		require.NoError(t, b.Store().Delete(res.Info.ID))
		got, blob, err = readBlob(t, b, res.Info.ID, 0, -1)
		require.NoError(t, err)
		require.False(t, blob.Local)
		require.Equal(t, []peer.ID{a.ID()}, blob.Holders())
		require.True(t, bytes.Equal(data, got), "%d bytes differ over the network", size)
		if size > 2 {
			off, length := int64(size/3), int64(size/3)
			got, _, err = readBlob(t, b, res.Info.ID, off, length)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data[off:off+length], got))
		}
	}
}

// A node that never talked to the holder finds it through the DHT (its
// only peer does not hold the blob) and fetches it.
func TestBlobFoundThroughTheDHT(t *testing.T) {
	t.Parallel()
	quiet := func(cfg *node.Config) { cfg.RendezvousInterval = time.Hour; cfg.APIAddr = "" }
	holder := StartNode(t, func() node.Config { c := Config(t, "holder"); quiet(&c); return c }())
	midCfg := Config(t, "middle")
	quiet(&midCfg)
	midCfg.Bootstrap = []peer.AddrInfo{AddrInfo(holder)}
	middle := StartNode(t, midCfg)
	WaitVerified(t, holder, middle.ID())
	data := randomBlob(t, 300<<10)
	res := putBlob(t, holder, data, 1)
	// Wait for the provider record to reach the middle node's DHT.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for ai := range middle.DHTProviders(ctx, res.Info.ID) {
			if ai.ID == holder.ID() {
				return true
			}
		}
		return false
	}, WaitTimeout, 50*time.Millisecond, "the provider record never reached the middle node")

	farCfg := Config(t, "far")
	quiet(&farCfg)
	farCfg.Bootstrap = []peer.AddrInfo{AddrInfo(middle)}
	far := StartNode(t, farCfg)
	require.False(t, Connected(far.Host(), holder.ID()), "far starts knowing only middle")
	WaitVerified(t, far, middle.ID())
	// From here far may reach the holder at any moment through the DHT
	// (its routing-table refresh asks middle, then the holder, one of the
	// servers closest to far's own key): that is the DHT at work, so no
	// "not connected" check is sound past this point. far's DHT admits
	// middle once it is verified; a lookup before that has nobody to ask.
	// (The lookup itself dials the holder: it is one of the DHT servers
	// closest to the key.)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for ai := range far.DHTProviders(ctx, res.Info.ID) {
			if ai.ID == holder.ID() {
				return true
			}
		}
		return false
	}, WaitTimeout, 50*time.Millisecond, "far never found the provider record")

	got, blob, err := readBlob(t, far, res.Info.ID, 0, -1)
	require.NoError(t, err)
	require.Equal(t, []peer.ID{holder.ID()}, blob.Holders())
	require.True(t, bytes.Equal(data, got))
}

// corruptBlob flips a byte of n's copy of id.
func corruptBlob(t testing.TB, n *node.Node, id cid.Cid, off int64) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(n.Store().Dir(), "blobs", "*", id.String()))
	require.NoError(t, err)
	require.Len(t, paths, 1)
	f, err := os.OpenFile(paths[0], os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x55
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

// seedRTT gives n's score book samples of p at rtt, as if pinged.
func seedRTT(n *node.Node, p peer.ID, rtt time.Duration) {
	for range 8 {
		n.Scores().ReportRequest(p, "test", rtt, scoring.Success)
	}
}

// A holder serving corrupted bytes is caught within the first chunk group;
// the reader fails over to an honest holder and the liar's score drops.
func TestCorruptHolderCaughtAndFailedOver(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 3, nil)
	reader, liar, honest := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes[1:] {
		WaitVerified(t, reader, n.ID())
	}
	data := randomBlob(t, 2<<20)
	id := putBlob(t, liar, data, 1).Info.ID
	putBlob(t, honest, data, 1)
	corruptBlob(t, liar, id, 100) // in the first group
	// The liar looks best, so it is asked first.
	seedRTT(reader, liar.ID(), time.Millisecond)
	seedRTT(reader, honest.ID(), 80*time.Millisecond)
	before := penaltyOf(reader.Score(liar.ID()))

	got, blob, err := readBlob(t, reader, id, 0, -1)
	require.NoError(t, err)
	require.Equal(t, []peer.ID{liar.ID(), honest.ID()}, blob.Holders())
	require.True(t, bytes.Equal(data, got))
	// The score's penalty component took the blow (its other components
	// move with the ping rounds meanwhile); the honest node has none.
	after := penaltyOf(reader.Score(liar.ID()))
	require.Less(t, after.Contribution, before.Contribution-0.1, "the liar was not penalised: %+v", after)
	require.Equal(t, 1.0, penaltyOf(reader.Score(honest.ID())).Value)
}

func penaltyOf(e scoring.Explanation) scoring.Component {
	for _, c := range e.Components {
		if c.Name == scoring.ComponentPenalty {
			return c
		}
	}
	return scoring.Component{}
}

// --replicas 3 among five nodes lands on this node and the two best-scored
// peers; with the best holder stopped, another node still gets the blob.
func TestReplicasOnTheBestScored(t *testing.T) {
	t.Parallel()
	// Latency injected on each node's connections to node0 (they dial it).
	// The far ones are far enough that a loaded machine's jitter (a late
	// ping, a delayed sample) cannot bring them level with the near ones.
	rtts := []time.Duration{0, 5 * time.Millisecond, 150 * time.Millisecond, 10 * time.Millisecond, 250 * time.Millisecond}
	nodes := StartNodes(t, 5, func(i int, cfg *node.Config, started []*node.Node) {
		cfg.APIAddr = ""
		// Freshness at its production pace: the test profile's (stale
		// after 1 s) swings a score by up to 0.1 whenever an announcement
		// is late under load, and this test is about latency.
		d := node.DefaultConfig()
		cfg.Scoring.FreshFor, cfg.Scoring.StaleAfter = d.Scoring.FreshFor, d.Scoring.StaleAfter
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{AddrInfo(started[0])}
			cfg.TCPDialer = netdelay.Dialer(rtts[i])
		}
	})
	src := nodes[0]
	// node0's ping rounds measure every peer a few times.
	require.Eventually(t, func() bool {
		for _, n := range nodes[1:] {
			if e := src.Score(n.ID()); e.Components[0].Samples < 3 || e.SmoothedRTT == 0 {
				return false
			}
		}
		return true
	}, WaitTimeout, 20*time.Millisecond, "node0 never pinged every peer")
	for i, n := range nodes[1:] {
		rtt := src.Score(n.ID()).SmoothedRTT
		require.GreaterOrEqual(t, rtt, rtts[i+1], "node%d's injected latency does not show", i+1)
	}
	data := randomBlob(t, 1<<20)
	res := putBlob(t, src, data, 3)
	// This node first, then the two nearest (5 and 10 ms) in their order
	// of the moment: under load, jitter of a few ms may swap those two.
	require.Equal(t, src.ID(), res.Holders[0])
	require.ElementsMatch(t, []peer.ID{src.ID(), nodes[1].ID(), nodes[3].ID()}, res.Holders, "scores: %s", scoresOf(src, nodes[1:]))

	require.NoError(t, nodes[1].Close())
	require.NoError(t, src.Close())
	WaitStatus(t, nodes[4], nodes[1].ID(), node.StatusDisconnected)
	got, _, err := readBlob(t, nodes[4], res.Info.ID, 0, -1)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

// More replicas than there are storage nodes: the copies made stay, and
// the error says why there are no more.
func TestTooFewNodesForTheReplicas(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 2, nil)
	WaitVerified(t, nodes[0], nodes[1].ID())
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	res, err := nodes[0].PutBlob(ctx, bytes.NewReader([]byte("three copies?")), 13, 3)
	require.ErrorIs(t, err, node.ErrTooFewHolders)
	require.Equal(t, []peer.ID{nodes[0].ID(), nodes[1].ID()}, res.Holders)
	require.Contains(t, err.Error(), "is on 2 of 3 nodes: every verified storage node connected to this one holds a copy now")
	require.NotContains(t, err.Error(), "%!")
	require.True(t, nodes[1].Store().Has(res.Info.ID))
}

// A node of role client stores nothing for others.
func TestClientNodeRefusesPuts(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 2, nil)
	full := nodes[0]
	cCfg := Config(t, "client")
	cCfg.APIAddr, cCfg.Role = "", handshake.RoleClient
	cCfg.Bootstrap = []peer.AddrInfo{AddrInfo(full)}
	client := StartNode(t, cCfg)
	WaitVerified(t, full, client.ID())
	id := putBlob(t, full, []byte("for the client?"), 1).Info.ID
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.ErrorIs(t, full.ReplicateTo(ctx, client.ID(), id), storage.ErrRefused)
	count, _ := client.Store().Usage()
	require.Zero(t, count)
	// Puts with replicas skip it: the other full node gets the copy.
	res := putBlob(t, full, []byte("replicated"), 2)
	require.Equal(t, []peer.ID{full.ID(), nodes[1].ID()}, res.Holders)
}

// A peer that is not Verified gets its storage stream reset.
func TestUnverifiedStorageStreamReset(t *testing.T) {
	t.Parallel()
	cfg := Config(t, "target")
	cfg.APIAddr = ""
	n := StartNode(t, cfg)
	h := NewHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	require.NoError(t, h.Connect(ctx, AddrInfo(n)))
	s, err := h.NewStream(ctx, n.ID(), storage.ID)
	if err == nil {
		_, err = s.Write([]byte{0x02, 0x22, 0x00})
		if err == nil {
			_, err = io.ReadAll(s)
		}
	}
	require.ErrorIs(t, err, network.ErrReset)
	count, _ := n.Store().Usage()
	require.Zero(t, count)
}

// replayStream is a stream whose first bytes were read already: Read
// gives them again, then the rest.
type replayStream struct {
	network.Stream
	r io.Reader
}

func (s replayStream) Read(p []byte) (int, error) { return s.r.Read(p) }

// stallGets makes n's storage service take get requests and never answer
// them (a holder whose disk hangs), while has and stat work as usual.
func stallGets(t *testing.T, n *node.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	svc, err := storage.NewService(ctx, n.Store(), storage.DefaultConfig(), nil)
	require.NoError(t, err)
	n.Host().SetStreamHandler(storage.ID, func(s network.Stream) {
		br := bufio.NewReader(s)
		size, err := binary.ReadUvarint(br)
		if err != nil || size > storage.MaxHeaderSize {
			s.Reset()
			return
		}
		head := make([]byte, size)
		if _, err := io.ReadFull(br, head); err != nil {
			s.Reset()
			return
		}
		var req storagepb.Request
		if proto.Unmarshal(head, &req) == nil && req.GetGet() != nil {
			<-ctx.Done()
			s.Reset()
			return
		}
		prefix := binary.AppendUvarint(nil, size)
		svc.Handle(replayStream{Stream: s, r: io.MultiReader(bytes.NewReader(append(prefix, head...)), br)})
	})
}

// A holder that takes the get and never answers is hedged: after
// HedgeAfter the reader asks the next holder too and reads from it, long
// before the stalled request would time out.
func TestGetHedgesPastAStalledHolder(t *testing.T) {
	t.Parallel()
	nodes := startStar(t, 3, func(c *node.Config) {
		c.Storage.HedgeAfter = 200 * time.Millisecond
		c.Storage.IdleTimeout = time.Minute // stall failover cannot be what saves the get
	})
	reader, staller, honest := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes[1:] {
		WaitVerified(t, reader, n.ID())
	}
	data := randomBlob(t, 300<<10)
	id := putBlob(t, staller, data, 1).Info.ID
	putBlob(t, honest, data, 1)
	stallGets(t, staller)
	seedRTT(reader, staller.ID(), time.Millisecond)
	seedRTT(reader, honest.ID(), 80*time.Millisecond)

	// readBlob's deadline (WaitTimeout) is shorter than the stalled
	// request's own timeout (30 s): only a hedge can finish in time.
	got, blob, err := readBlob(t, reader, id, 0, -1)
	require.NoError(t, err)
	require.Equal(t, []peer.ID{staller.ID(), honest.ID()}, blob.Holders())
	require.True(t, bytes.Equal(data, got))
}

// scoresOf describes n's scores of peers, for failure messages.
func scoresOf(n *node.Node, peers []*node.Node) string {
	var b strings.Builder
	for _, p := range peers {
		e := n.Score(p.ID())
		fmt.Fprintf(&b, "\n%s: score %.3f rtt %v", p.Config().Name, e.Score, e.SmoothedRTT)
		for _, c := range e.Components {
			fmt.Fprintf(&b, " %s=%.3f(%d)", c.Name, c.Value, c.Samples)
		}
	}
	return b.String()
}
