package handshake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/internal/atomicfile"
)

// TrustFileName is the trust store's file in the data directory.
const TrustFileName = "trust.json"

// Defaults of the pending queue.
const (
	DefaultMaxPending = 64
	DefaultPendingTTL = time.Hour
)

// TrustRecord is an operator's decision about one node.
type TrustRecord struct {
	NodeID peer.ID `json:"node_id"`
	// PublicKey is the node's key, base64 of its libp2p encoding, when known.
	PublicKey string    `json:"public_key,omitempty"`
	Name      string    `json:"name,omitempty"`
	Decision  Decision  `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	Created   time.Time `json:"created"`
	// Expires, if set, ends the decision: the node is unknown again.
	Expires time.Time `json:"expires,omitzero"`
}

// PendingRequest is a member awaiting an operator's approval.
type PendingRequest struct {
	NodeID        peer.ID        `json:"node_id"`
	Name          string         `json:"name"`
	Role          Role           `json:"role"`
	Version       string         `json:"version"`
	Addrs         []ma.Multiaddr `json:"-"`
	Justification string         `json:"justification,omitempty"`
	PublicKey     string         `json:"-"`
	Since         time.Time      `json:"since"`
	Expires       time.Time      `json:"expires"`
}

type trustFile struct {
	Version int           `json:"version"`
	Records []TrustRecord `json:"records"`
}

// ErrUnknownNode is returned for an operation on a node the store does not
// know.
var ErrUnknownNode = errors.New("unknown node")

// Trust holds the policy, the persisted operator decisions and the pending
// queue. It is safe for concurrent use.
type Trust struct {
	policy     Policy
	path       string
	maxPending int
	pendingTTL time.Duration
	now        func() time.Time

	mu      sync.Mutex
	records map[peer.ID]TrustRecord
	pending map[peer.ID]PendingRequest
}

// TrustOptions configure OpenTrust; zero values take the defaults.
type TrustOptions struct {
	MaxPending int
	PendingTTL time.Duration
	Now        func() time.Time
}

// OpenTrust loads the trust store of dataDir. A corrupt file is moved aside
// (to trust.json.corrupt-<time>) and reported in the returned warning; the
// store then starts empty rather than silently overwriting it.
func OpenTrust(dataDir string, policy Policy, o TrustOptions) (t *Trust, warning error, err error) {
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.PendingTTL <= 0 {
		o.PendingTTL = DefaultPendingTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t = &Trust{
		policy: policy, path: filepath.Join(dataDir, TrustFileName),
		maxPending: o.MaxPending, pendingTTL: o.PendingTTL, now: o.Now,
		records: map[peer.ID]TrustRecord{}, pending: map[peer.ID]PendingRequest{},
	}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read trust store: %w", err)
	}
	var f struct {
		Version int               `json:"version"`
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
		aside := atomicfile.AsidePath(t.path, o.Now())
		if rerr := os.Rename(t.path, aside); rerr != nil {
			return nil, nil, fmt.Errorf("trust store %s is corrupt (%v) and cannot be moved aside: %w", t.path, err, rerr)
		}
		return t, fmt.Errorf("trust store %s was corrupt (%v): kept aside as %s; starting with no trust decisions", t.path, err, aside), nil
	}
	// One bad record must not cost the others (a deny list lost is a
	// revoked node let back in): skip it, and say so.
	skipped := 0
	for _, raw := range f.Records {
		var r TrustRecord
		if json.Unmarshal(raw, &r) != nil || r.NodeID.Validate() != nil || (r.Decision != DecisionAllow && r.Decision != DecisionDeny) {
			skipped++
			continue
		}
		t.records[r.NodeID] = r
	}
	if skipped > 0 {
		aside := atomicfile.AsidePath(t.path, o.Now())
		if err := atomicfile.Write(aside, b, 0o600); err != nil {
			return nil, nil, fmt.Errorf("trust store %s has %d unreadable record(s) and cannot be copied aside: %w", t.path, skipped, err)
		}
		return t, fmt.Errorf("trust store %s: ignored %d unreadable record(s); the file as it was is kept as %s", t.path, skipped, aside), nil
	}
	return t, nil, nil
}

// Policy returns the trust policy.
func (t *Trust) Policy() Policy { return t.policy }

// decision returns the current decision for p, ignoring expired ones.
func (t *Trust) decisionLocked(p peer.ID) Decision {
	r, ok := t.records[p]
	if !ok || (!r.Expires.IsZero() && t.now().After(r.Expires)) {
		return DecisionNone
	}
	return r.Decision
}

// Evaluate applies the policy to a peer that proved itself; a peer left
// pending joins the queue.
func (t *Trust) Evaluate(p peer.ID, pub crypto.PubKey, id Identity) (Outcome, *RejectError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.decisionLocked(p)
	t.expirePendingLocked()
	_, already := t.pending[p]
	out, rej := Decide(t.policy, d, !already && len(t.pending) >= t.maxPending)
	if out == Pending {
		now := t.now()
		t.pending[p] = PendingRequest{
			NodeID: p, Name: id.Name, Role: id.Role, Version: id.Version, Addrs: id.ListenAddrs,
			Justification: id.Justification, PublicKey: encodeKey(pub), Since: now, Expires: now.Add(t.pendingTTL),
		}
	}
	return out, rej
}

// Foresee reports whether Evaluate would verify p now, without its side
// effects (a pending request): the responder then sends its decision ahead
// of the peer's proof.
func (t *Trust) Foresee(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out, _ := Decide(t.policy, t.decisionLocked(p), false)
	return out == Verified
}

func (t *Trust) expirePendingLocked() {
	now := t.now()
	for p, r := range t.pending {
		if now.After(r.Expires) {
			delete(t.pending, p)
		}
	}
}

// Pending lists the requests awaiting approval, oldest first.
func (t *Trust) Pending() []PendingRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expirePendingLocked()
	out := make([]PendingRequest, 0, len(t.pending))
	for _, r := range t.pending {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// Records lists the operator's decisions, by node ID.
func (t *Trust) Records() []TrustRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TrustRecord, 0, len(t.records))
	for _, r := range t.records {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Set records a decision for p (allow or deny) and persists the store. A
// pending request for p is settled by it. name and key may be empty; they
// are then taken from the pending request or the previous record.
func (t *Trust) Set(p peer.ID, d Decision, reason string) (TrustRecord, error) {
	if d != DecisionAllow && d != DecisionDeny {
		return TrustRecord{}, fmt.Errorf("decision %q: want allow or deny", d)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, had := t.records[p]
	r := TrustRecord{NodeID: p, Decision: d, Reason: reason, Created: t.now().UTC()}
	if had {
		r.Name, r.PublicKey = prev.Name, prev.PublicKey
	}
	if req, ok := t.pending[p]; ok {
		r.Name, r.PublicKey = req.Name, req.PublicKey
	}
	t.records[p] = r
	if err := t.saveLocked(); err != nil {
		if had {
			t.records[p] = prev
		} else {
			delete(t.records, p)
		}
		return TrustRecord{}, err
	}
	delete(t.pending, p)
	return r, nil
}

// IsPending reports whether p awaits approval.
func (t *Trust) IsPending(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expirePendingLocked()
	_, ok := t.pending[p]
	return ok
}

// DropPending forgets p's pending request (it disconnected or was settled).
func (t *Trust) DropPending(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, p)
}

func (t *Trust) saveLocked() error {
	f := trustFile{Version: 1, Records: make([]TrustRecord, 0, len(t.records))}
	for _, r := range t.records {
		f.Records = append(f.Records, r)
	}
	sort.Slice(f.Records, func(i, j int) bool { return f.Records[i].NodeID < f.Records[j].NodeID })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(t.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save trust store: %w", err)
	}
	return nil
}

func encodeKey(pub crypto.PubKey) string {
	if pub == nil {
		return ""
	}
	b, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
