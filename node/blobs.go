package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/protocols/handshake"
	"peernode/protocols/storage"
	"peernode/protocols/storage/store"
	"peernode/scoring"
)

// Storage wiring: limits of finding holders and providing.
const (
	// storageDir is the store's directory inside the data directory.
	storageDir = "storage"
	// maxProviders bounds a DHT provider lookup.
	maxProviders = 20
	// askPeers is how many of the best verified peers a get asks directly
	// (one has round trip) beside the DHT lookup: a blob put a moment ago
	// is found before its provider record has spread.
	askPeers = 16
	// findTimeout bounds a DHT lookup of a blob's providers.
	findTimeout = 10 * time.Second
	// askTimeout bounds asking the best peers whether they hold a blob:
	// one round trip, so a peer that takes longer is skipped.
	askTimeout = 3 * time.Second
	// provideQueue is how many blobs may wait to be provided; provideBatch
	// how many are provided at once.
	provideQueue = 1024
	provideBatch = 8
	// penaltyBadData is the penalty of a peer caught sending wrong bytes.
	penaltyBadData = 2
)

// ErrNoHolder means no reachable node holds the blob.
var ErrNoHolder = errors.New("no reachable node holds the blob")

// ErrTooFewHolders means a put stored fewer copies than asked for; the
// copies made stay.
var ErrTooFewHolders = errors.New("fewer copies stored than asked for")

// blobs is the node's storage: the local store, the protocol's service and
// client, and the provide queue.
type blobs struct {
	store   *store.Store
	svc     *storage.Service
	client  *storage.Client
	provide chan cid.Cid
}

func (n *Node) wireStorage() error {
	st, err := store.Open(filepath.Join(n.cfg.DataDir, storageDir), store.Options{MaxBlobSize: n.cfg.MaxBlobSize, Quota: n.cfg.StorageMax})
	if err != nil {
		return fmt.Errorf("open the blob store: %w", err)
	}
	cfg := n.cfg.Storage
	cfg.AcceptPuts = n.cfg.Role != handshake.RoleClient
	b := &blobs{store: st, provide: make(chan cid.Cid, provideQueue)}
	if b.svc, err = storage.NewService(n.ctx, st, cfg, func(info store.Info) { n.queueProvide(info.ID) }); err != nil {
		_ = st.Close()
		return err
	}
	open := func(ctx context.Context, p peer.ID) (network.Stream, error) { return n.OpenStream(ctx, p, storage.ID) }
	if b.client, err = storage.NewClient(open, cfg); err != nil {
		_ = st.Close()
		return err
	}
	n.blobs = b
	n.Handle(storage.ID, b.svc.Handle)
	return nil
}

// Store is the node's local blob store.
func (n *Node) Store() *store.Store { return n.blobs.store }

// queueProvide asks for id's provider record; when the queue is full the
// next reprovide round catches up.
func (n *Node) queueProvide(id cid.Cid) {
	select {
	case n.blobs.provide <- id:
	default:
	}
}

// provideLoop announces stored blobs in the DHT: queued ones in batches as
// they come, and all of them every ReprovideInterval.
func (n *Node) provideLoop() {
	n.spawn(func() {
		t := time.NewTicker(n.cfg.ReprovideInterval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case id := <-n.blobs.provide:
				batch := []cid.Cid{id}
			drain:
				for len(batch) < provideBatch {
					select {
					case id := <-n.blobs.provide:
						batch = append(batch, id)
					default:
						break drain
					}
				}
				n.provideAll(batch)
			case <-t.C:
				infos, err := n.blobs.store.List()
				if err != nil {
					log.Warnw("cannot list blobs to reprovide", "err", err)
					continue
				}
				ids := make([]cid.Cid, len(infos))
				for i, in := range infos {
					ids[i] = in.ID
				}
				n.provideAll(ids)
			}
		}
	})
}

// provideAll provides ids, provideBatch at a time.
func (n *Node) provideAll(ids []cid.Cid) {
	d := n.rv.DHT()
	sem := make(chan struct{}, provideBatch)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-n.ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(n.ctx, findTimeout)
			defer cancel()
			if err := d.Provide(ctx, id, true); err != nil {
				log.Debugw("provide failed", "blob", id, "err", err)
			}
		}()
	}
	wg.Wait()
}

// PutResult is where a put stored the blob.
type PutResult struct {
	Info    store.Info
	Holders []peer.ID // this node first
}

// PutBlob stores r (size bytes, or -1 if unknown) in the local store, then
// on replicas-1 of the best-scored Verified storage peers, going down the
// ranking past peers that fail. With fewer copies than asked for it
// returns the holders it has and an error wrapping ErrTooFewHolders.
func (n *Node) PutBlob(ctx context.Context, r io.Reader, size int64, replicas int) (PutResult, error) {
	if replicas < 1 {
		return PutResult{}, fmt.Errorf("replicas %d: want at least 1", replicas)
	}
	info, err := n.blobs.store.Put(ctx, r, size, cid.Undef)
	if err != nil {
		return PutResult{}, err
	}
	n.queueProvide(info.ID)
	res := PutResult{Info: info, Holders: []peer.ID{n.id}}
	if replicas == 1 {
		return res, nil
	}
	var failures []error
	for _, p := range n.storageCandidates(replicas - 1) {
		if len(res.Holders) == replicas {
			break
		}
		t, err := n.blobs.client.Put(ctx, p, n.blobs.store, info.ID)
		n.reportStorage(p, t.RTT, err)
		if err != nil {
			failures = append(failures, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		res.Holders = append(res.Holders, p)
	}
	if len(res.Holders) < replicas {
		if len(failures) == 0 {
			return res, fmt.Errorf("%w: blob %s is on %d of %d nodes: every verified storage node connected to this one holds a copy now",
				ErrTooFewHolders, info.ID, len(res.Holders), replicas)
		}
		return res, fmt.Errorf("%w: blob %s is on %d of %d nodes (%d storage peers failed): %w",
			ErrTooFewHolders, info.ID, len(res.Holders), replicas, len(failures), errors.Join(failures...))
	}
	return res, nil
}

// storageCandidates ranks the Verified storage peers for a put of k
// copies: the k best (with now and then an unsampled peer among them, so
// new peers get tried), then the others, best first, to fall back on.
func (n *Node) storageCandidates(k int) []peer.ID {
	out := n.BestPeers(k, handshake.RoleFull)
	seen := map[peer.ID]bool{}
	for _, p := range out {
		seen[p] = true
	}
	for _, p := range n.BestPeers(math.MaxInt32, handshake.RoleFull) {
		if !seen[p] {
			out = append(out, p)
		}
	}
	return out
}

// reportStorage tells scoring how a request to p went.
func (n *Node) reportStorage(p peer.ID, rtt time.Duration, err error) {
	o := scoring.Success
	switch {
	case err == nil:
	case errors.Is(err, store.ErrBadData):
		o = scoring.Failure
		n.book.Penalize(p, penaltyBadData)
		log.Infow("peer sent bytes that do not match the blob", "peer", p, "err", err)
	case errors.Is(err, context.Canceled):
		// We gave up on the request (the caller went away): says nothing
		// of the peer.
		return
	case errors.Is(err, storage.ErrStalled), errors.Is(err, context.DeadlineExceeded):
		o = scoring.Timeout
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrTooLarge),
		errors.Is(err, storage.ErrRefused):
		// An answer, not a fault: the peer is fine.
	default:
		o = scoring.Failure
	}
	n.book.ReportRequest(p, storage.ID, rtt, o)
}

// Blob is a blob opened for reading: here, or on holders ranked by score.
type Blob struct {
	n       *Node
	ID      cid.Cid
	Size    int64
	Local   bool
	Stored  time.Time
	holders []peer.ID
}

// Holders are the peers a remote blob will be read from, best first.
func (b *Blob) Holders() []peer.ID { return b.holders }

// OpenBlob finds blob id: in the local store, else on the best verified
// peers (asked directly: one round trip gives holders and size), else on
// the providers the DHT knows, whose size it learns from the best one that
// answers. Holders are ranked by score.
func (n *Node) OpenBlob(ctx context.Context, id cid.Cid) (*Blob, error) {
	if err := store.CheckID(id); err != nil {
		return nil, err
	}
	if info, err := n.blobs.store.Stat(id); err == nil {
		return &Blob{n: n, ID: id, Size: info.Size, Local: true, Stored: info.Stored}, nil
	}
	holders, size, asked := n.askPeers(ctx, id)
	if len(holders) > 0 {
		return &Blob{n: n, ID: id, Size: size, holders: n.rank(holders)}, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	holders = n.rank(n.providers(ctx, id))
	for i, p := range holders {
		size, rtt, err := n.blobs.client.Stat(ctx, p, id)
		n.reportStorage(p, rtt, err)
		if err == nil {
			return &Blob{n: n, ID: id, Size: size, holders: holders[i:]}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("%w: %s (%d peers asked, %d providers tried)", ErrNoHolder, id, asked, len(holders))
}

// askPeers asks the best verified storage peers whether they hold id, all
// at once, and returns those that do, the blob's size and how many were
// asked.
func (n *Node) askPeers(ctx context.Context, id cid.Cid) ([]peer.ID, int64, int) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	var (
		mu      sync.Mutex
		holders []peer.ID
		size    int64
		wg      sync.WaitGroup
	)
	asked := n.BestPeers(askPeers, handshake.RoleFull)
	for _, p := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sizes, rtt, err := n.blobs.client.Has(ctx, p, []cid.Cid{id})
			n.reportStorage(p, rtt, err)
			if err == nil && sizes[0] >= 0 {
				mu.Lock()
				holders, size = append(holders, p), sizes[0]
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return holders, size, len(asked)
}

// providers looks id up in the DHT, keeping the addresses it learns.
func (n *Node) providers(ctx context.Context, id cid.Cid) []peer.ID {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	var out []peer.ID
	for ai := range n.rv.DHT().FindProvidersAsync(ctx, id, maxProviders) {
		if ai.ID == n.id {
			continue
		}
		if len(ai.Addrs) > 0 {
			n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}
		out = append(out, ai.ID)
	}
	return out
}

// rank orders peers by score, best first.
func (n *Node) rank(peers []peer.ID) []peer.ID {
	out := make([]peer.ID, 0, len(peers))
	for _, r := range n.book.Rank(peers) {
		out = append(out, r.Peer)
	}
	return out
}

// WriteRange writes bytes [off, off+length) of the blob to w, verified:
// from the local store, or from its holders in order, a holder that fails,
// stalls or sends bad data handing over to the next from the first byte it
// did not deliver.
func (b *Blob) WriteRange(ctx context.Context, w io.Writer, off, length int64) error {
	if off < 0 || length < 0 || off > b.Size || length > b.Size-off {
		return fmt.Errorf("%w: %d+%d of a blob of %d bytes", store.ErrBadRange, off, length, b.Size)
	}
	if b.Local {
		r, err := b.n.blobs.store.OpenRange(b.ID, off, length)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	}
	var errs []error
	lw := &localWriter{w: w}
	rest := b.holders
	for len(rest) > 0 && ctx.Err() == nil {
		a, cancel, left, askErrs := b.n.askHedged(ctx, rest, b.ID, off, length)
		errs, rest = append(errs, askErrs...), left
		if a == nil {
			break
		}
		t, err := b.n.blobs.client.Read(ctx, a, lw)
		cancel()
		if lw.err != nil {
			// Our side failed (the reader went away): not the peer's fault.
			return lw.err
		}
		b.n.reportStorage(a.Peer(), t.RTT, err)
		off, length = off+t.Written, length-t.Written
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrNoHolder, b.ID, errors.Join(errs...))
}

// askHedged asks the holders in order for bytes [off, off+length) of id,
// the next one as well whenever HedgeAfter passes without an answer or an
// ask fails, and returns the first answer with the cancel of its request
// (call it once the answer is read), the holders still worth asking later
// (all but the winner and those that failed) and the failures.
func (n *Node) askHedged(ctx context.Context, holders []peer.ID, id cid.Cid, off, length int64) (*storage.Answer, context.CancelFunc, []peer.ID, []error) {
	type result struct {
		i   int
		a   *storage.Answer
		err error
	}
	results := make(chan result, len(holders))
	cancels := make([]context.CancelFunc, 0, len(holders))
	launch := func() {
		i := len(cancels)
		actx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		go func() {
			a, err := n.blobs.client.Ask(actx, holders[i], id, off, length)
			results <- result{i, a, err}
		}()
	}
	// dropLate aborts the answers still to come, from holders that lost.
	dropLate := func(pending int) {
		go func() {
			for range pending {
				if r := <-results; r.a != nil {
					r.a.Abort()
				}
			}
		}()
	}
	failed := map[int]bool{}
	var errs []error
	launch()
	hedge := time.NewTimer(n.cfg.Storage.HedgeAfter)
	defer hedge.Stop()
	for pending := 1; pending > 0; {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				for j, cancel := range cancels {
					if j != r.i {
						cancel()
					}
				}
				dropLate(pending)
				var left []peer.ID
				for j, p := range holders {
					if j != r.i && !failed[j] {
						left = append(left, p)
					}
				}
				return r.a, cancels[r.i], left, errs
			}
			failed[r.i] = true
			errs = append(errs, r.err)
			n.reportStorage(holders[r.i], r.a.RTT(), r.err)
			if len(cancels) < len(holders) && ctx.Err() == nil {
				launch()
				pending++
				hedge.Reset(n.cfg.Storage.HedgeAfter)
			}
		case <-hedge.C:
			if len(cancels) < len(holders) {
				launch()
				pending++
				hedge.Reset(n.cfg.Storage.HedgeAfter)
			}
		case <-ctx.Done():
			for _, cancel := range cancels {
				cancel()
			}
			dropLate(pending)
			return nil, nil, nil, append(errs, ctx.Err())
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	return nil, nil, nil, errs
}

// Range streams bytes [off, off+length) of the blob, verified, as
// WriteRange does.
func (b *Blob) Range(ctx context.Context, off, length int64) (io.ReadCloser, error) {
	if b.Local {
		return b.n.blobs.store.OpenRange(b.ID, off, length)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(b.WriteRange(ctx, pw, off, length)) }()
	return pr, nil
}

// localWriter remembers the first error of the writer it wraps, so a
// failure of ours is told apart from the peer's.
type localWriter struct {
	w   io.Writer
	err error
}

func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// ReplicateTo copies blob id from the local store to peer p.
func (n *Node) ReplicateTo(ctx context.Context, p peer.ID, id cid.Cid) error {
	t, err := n.blobs.client.Put(ctx, p, n.blobs.store, id)
	n.reportStorage(p, t.RTT, err)
	return err
}

// DHTProviders looks up id's provider records in the DHT.
func (n *Node) DHTProviders(ctx context.Context, id cid.Cid) <-chan peer.AddrInfo {
	return n.rv.DHT().FindProvidersAsync(ctx, id, maxProviders)
}
