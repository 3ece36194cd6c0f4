package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

// pair is a client host and a server host on loopback, the server serving
// the storage protocol from its store.
type pair struct {
	client       *Client
	local, store *store.Store // the client's store and the server's
	server       host.Host
	svc          *Service
}

func newHost(t testing.TB) host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func openStore(t testing.TB, opt store.Options) *store.Store {
	if opt.MinFreeFraction == 0 {
		opt.MinFreeFraction = -1 // the test machine's disk may be fuller than 90 %
	}
	st, err := store.Open(t.TempDir(), opt)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newPair(t testing.TB, cfg Config, opt store.Options) *pair {
	ch, sh := newHost(t), newHost(t)
	p := &pair{server: sh, local: openStore(t, store.Options{MinFreeFraction: -1}), store: openStore(t, opt)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	p.svc, err = NewService(ctx, p.store, cfg, nil)
	require.NoError(t, err)
	sh.SetStreamHandler(ID, p.svc.Handle)
	require.NoError(t, ch.Connect(ctx, peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}))
	open := func(ctx context.Context, id peer.ID) (network.Stream, error) { return ch.NewStream(ctx, id, ID) }
	p.client, err = NewClient(open, cfg)
	require.NoError(t, err)
	return p
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func putLocal(t testing.TB, st *store.Store, data []byte) cid.Cid {
	info, err := st.Put(context.Background(), bytes.NewReader(data), int64(len(data)), cid.Undef)
	require.NoError(t, err)
	return info.ID
}

func testConfig() Config {
	c := DefaultConfig()
	c.IdleTimeout = 2 * time.Second
	return c
}

func TestPutGetRoundTrips(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	ctx := context.Background()
	for _, size := range []int{0, 1, store.GroupSize, store.GroupSize + 1, 1<<20 + 1} {
		data := randomBytes(t, size)
		id := putLocal(t, p.local, data)
		tr, err := p.client.Put(ctx, p.server.ID(), p.local, id)
		require.NoError(t, err, "put %d bytes", size)
		require.EqualValues(t, size, tr.Size)
		require.NoError(t, p.store.Verify(id))

		var got bytes.Buffer
		tr, err = p.client.Get(ctx, p.server.ID(), id, 0, -1, &got)
		require.NoError(t, err, "get %d bytes", size)
		require.True(t, bytes.Equal(data, got.Bytes()))
		require.EqualValues(t, size, tr.Written)

		size2, _, err := p.client.Stat(ctx, p.server.ID(), id)
		require.NoError(t, err)
		require.EqualValues(t, size, size2)
	}
}

func TestRangedGets(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	data := randomBytes(t, 3*store.GroupSize+100)
	id := putLocal(t, p.store, data)
	g := int64(store.GroupSize)
	for _, r := range [][2]int64{{0, 1}, {0, g}, {g - 1, 2}, {g, g}, {5, 2*g + 7}, {3 * g, 100}, {3*g + 99, 1}, {int64(len(data)), 0}, {17, 0}} {
		var got bytes.Buffer
		tr, err := p.client.Get(context.Background(), p.server.ID(), id, r[0], r[1], &got)
		require.NoError(t, err, "range %v", r)
		require.True(t, bytes.Equal(data[r[0]:r[0]+r[1]], got.Bytes()), "range %v", r)
		require.Equal(t, r[1], tr.Written)
	}
	_, err := p.client.Get(context.Background(), p.server.ID(), id, int64(len(data)), 1, io.Discard)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestHasAndNotFound(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	held := putLocal(t, p.store, []byte("held"))
	missing := store.Sum([]byte("missing"))
	sizes, _, err := p.client.Has(context.Background(), p.server.ID(), []cid.Cid{missing, held, held})
	require.NoError(t, err)
	require.Equal(t, []int64{-1, 4, 4}, sizes)

	_, err = p.client.Get(context.Background(), p.server.ID(), missing, 0, -1, io.Discard)
	require.ErrorIs(t, err, store.ErrNotFound)
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, pb.Code_NOT_FOUND, re.Code)
	_, _, err = p.client.Stat(context.Background(), p.server.ID(), missing)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func storeIsEmpty(t testing.TB, st *store.Store) {
	t.Helper()
	count, bytes := st.Usage()
	require.Zero(t, count)
	require.Zero(t, bytes)
	var files []string
	require.NoError(t, filepath.Walk(st.Dir(), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, path)
		}
		return err
	}))
	require.Empty(t, files, "files left in the store")
}

func TestPutRefusals(t *testing.T) {
	t.Run("client role", func(t *testing.T) {
		cfg := testConfig()
		cfg.AcceptPuts = false
		p := newPair(t, cfg, store.Options{})
		id := putLocal(t, p.local, randomBytes(t, 1<<20))
		_, err := p.client.Put(context.Background(), p.server.ID(), p.local, id)
		require.ErrorIs(t, err, ErrRefused)
		storeIsEmpty(t, p.store)
	})
	t.Run("quota", func(t *testing.T) {
		p := newPair(t, testConfig(), store.Options{Quota: 1 << 20})
		id := putLocal(t, p.local, randomBytes(t, 4<<20))
		_, err := p.client.Put(context.Background(), p.server.ID(), p.local, id)
		require.ErrorIs(t, err, store.ErrQuota)
		storeIsEmpty(t, p.store)
	})
	t.Run("too large", func(t *testing.T) {
		p := newPair(t, testConfig(), store.Options{MaxBlobSize: 1 << 20})
		id := putLocal(t, p.local, randomBytes(t, 1<<20+1))
		_, err := p.client.Put(context.Background(), p.server.ID(), p.local, id)
		require.ErrorIs(t, err, store.ErrTooLarge)
		storeIsEmpty(t, p.store)
	})
}

// corrupt flips a byte at off in blob id's data file in st.
func corrupt(t testing.TB, st *store.Store, id cid.Cid, off int64) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(st.Dir(), "blobs", "*", id.String()))
	require.NoError(t, err)
	require.Len(t, paths, 1)
	f, err := os.OpenFile(paths[0], os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

// A holder whose copy went bad is caught at the first group that differs:
// the client has written exactly the groups before it.
func TestGetCatchesBadDataAtTheFirstBadGroup(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	data := randomBytes(t, 64*store.GroupSize)
	id := putLocal(t, p.store, data)
	bad := int64(5*store.GroupSize + 10)
	corrupt(t, p.store, id, bad)
	var got bytes.Buffer
	tr, err := p.client.Get(context.Background(), p.server.ID(), id, 0, -1, &got)
	require.ErrorIs(t, err, store.ErrBadData)
	require.EqualValues(t, 5*store.GroupSize, tr.Written)
	require.Equal(t, data[:tr.Written], got.Bytes())
}

// A put whose bytes do not match the ID it declares is refused with
// BAD_DATA and leaves nothing on the server.
func TestPutOfBadDataRefused(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	data := randomBytes(t, 32*store.GroupSize)
	id := putLocal(t, p.local, data)
	corrupt(t, p.local, id, 3*store.GroupSize)
	_, err := p.client.Put(context.Background(), p.server.ID(), p.local, id)
	require.ErrorIs(t, err, store.ErrBadData)
	storeIsEmpty(t, p.store)
}

// A server that takes the request and never answers is a stall: the client
// gives up after its idle timeout.
func TestStalledServerTimesOut(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	p := newPair(t, cfg, store.Options{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p.server.SetStreamHandler(ID, func(s network.Stream) {
		<-release
		s.Reset()
	})
	id := store.Sum([]byte("x"))
	_, err := p.client.Get(context.Background(), p.server.ID(), id, 0, -1, io.Discard)
	require.ErrorIs(t, err, ErrStalled)
}

func TestBusyServerAnswersBusy(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTransfers = 1
	// The slot holder below sends nothing: it must not be dropped as
	// stalled while the test runs.
	cfg.IdleTimeout = time.Minute
	p := newPair(t, cfg, store.Options{})
	id := putLocal(t, p.store, []byte("small"))
	// A put that announces 1 MiB and sends nothing holds the only slot.
	str, err := p.client.open(context.Background(), p.server.ID())
	require.NoError(t, err)
	defer str.Reset()
	big := store.Sum(randomBytes(t, 1<<20))
	require.NoError(t, writeMsg(str, &pb.Request{Body: &pb.Request_Put{Put: &pb.Put{Id: big.Bytes(), Size: 1 << 20}}}))
	require.Eventually(t, func() bool { return len(p.svc.slots) == 1 }, 20*time.Second, 5*time.Millisecond, "the put never took the slot")
	_, err = p.client.Get(context.Background(), p.server.ID(), id, 0, -1, io.Discard)
	require.ErrorIs(t, err, ErrBusy)
	// Has and stat need no slot.
	_, _, err = p.client.Stat(context.Background(), p.server.ID(), id)
	require.NoError(t, err)
	str.Reset()
	require.Eventually(t, func() bool {
		_, err := p.client.Get(context.Background(), p.server.ID(), id, 0, -1, io.Discard)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, "the slot was never released")
}

func TestMalformedRequestAnswered(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	for _, req := range []*pb.Request{
		{},
		{Body: &pb.Request_Get{Get: &pb.Get{Id: []byte("not a cid")}}},
		{Body: &pb.Request_Has{Has: &pb.Has{Ids: make([][]byte, MaxHasIDs+1)}}},
	} {
		_, _, _, _, _, err := p.client.request(context.Background(), p.server.ID(), req)
		require.ErrorIs(t, err, ErrMalformed)
	}
}

// A deadline is renewed at the first read and then at most every
// idle/renewals, never past the transfer's end, so a stream that stalls
// fails between (1-1/renewals)·idle and idle after its last read.
func TestRenewDeadline(t *testing.T) {
	idle := 16 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := t0.Add(time.Minute)
	var renewed time.Time
	d, ok := renewDeadline(&renewed, t0, idle, until)
	require.True(t, ok, "the first read sets a deadline")
	require.Equal(t, t0.Add(idle), d)
	for _, at := range []time.Duration{0, time.Millisecond, idle/renewals - 1} {
		_, ok := renewDeadline(&renewed, t0.Add(at), idle, until)
		require.False(t, ok, "renewed again %v later", at)
	}
	now := t0.Add(idle / renewals)
	d, ok = renewDeadline(&renewed, now, idle, until)
	require.True(t, ok)
	require.Equal(t, now.Add(idle), d)
	// Every read between renewals finds the deadline at least
	// (1-1/renewals)·idle ahead.
	last := d
	for at := time.Duration(0); at < idle/renewals; at += 97 * time.Millisecond {
		_, ok := renewDeadline(&renewed, now.Add(at), idle, until)
		require.False(t, ok)
		require.GreaterOrEqual(t, last.Sub(now.Add(at)), idle-idle/renewals)
	}
	// Near the end, the deadline is the transfer's.
	late := until.Add(-time.Second)
	d, ok = renewDeadline(&renewed, late, idle, until)
	require.True(t, ok)
	require.Equal(t, until, d)
}
