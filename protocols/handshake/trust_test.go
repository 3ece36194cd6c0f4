package handshake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is TrustOptions.Now under the test's control.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: testNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testPeer struct {
	id  peer.ID
	pub crypto.PubKey
}

func newTestPeer(t *testing.T) testPeer {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	id, err := peer.IDFromPublicKey(pub)
	require.NoError(t, err)
	return testPeer{id: id, pub: pub}
}

func identityOf(name string) Identity {
	return Identity{
		Name: name, Role: RoleFull, Version: "v0.9.0", Justification: "I am " + name,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001")},
	}
}

func openTrust(t *testing.T, dir string, p Policy, o TrustOptions) *Trust {
	t.Helper()
	tr, warn, err := OpenTrust(dir, p, o)
	require.NoError(t, err)
	require.NoError(t, warn)
	require.NotNil(t, tr)
	return tr
}

func TestOpenTrustEmptyDir(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []Policy{PolicyOpen, PolicyAllowlist, PolicyManual} {
		tr := openTrust(t, dir, p, TrustOptions{})
		require.Equal(t, p, tr.Policy())
		require.Empty(t, tr.Records())
		require.Empty(t, tr.Pending())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "opening writes nothing")
}

func TestOpenTrustUnreadable(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, TrustFileName), 0o700))
	tr, warn, err := OpenTrust(dir, PolicyOpen, TrustOptions{})
	require.Error(t, err, "a trust store that cannot be read is an error, not a fresh start")
	require.NoError(t, warn)
	require.Nil(t, tr)
}

func TestTrustEvaluatePolicies(t *testing.T) {
	cases := []struct {
		policy   Policy
		decision Decision
		want     Outcome
		reason   Reason
	}{
		{PolicyOpen, DecisionNone, Verified, 0},
		{PolicyOpen, DecisionAllow, Verified, 0},
		{PolicyOpen, DecisionDeny, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, DecisionNone, Rejected, ReasonNotAllowed},
		{PolicyAllowlist, DecisionAllow, Verified, 0},
		{PolicyAllowlist, DecisionDeny, Rejected, ReasonNotAllowed},
		{PolicyManual, DecisionNone, Pending, 0},
		{PolicyManual, DecisionAllow, Verified, 0},
		{PolicyManual, DecisionDeny, Rejected, ReasonNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.policy.String()+"/"+string(c.decision), func(t *testing.T) {
			tr := openTrust(t, t.TempDir(), c.policy, TrustOptions{})
			p := newTestPeer(t)
			if c.decision != DecisionNone {
				_, err := tr.Set(p.id, c.decision, "test")
				require.NoError(t, err)
			}
			got, rej := tr.Evaluate(p.id, p.pub, identityOf("bob"))
			require.Equal(t, c.want, got)
			if c.want == Rejected {
				requireReject(t, c.reason, rej)
			} else {
				require.Nil(t, rej)
			}
			require.Equal(t, c.want == Pending, tr.IsPending(p.id), "only a pending peer joins the queue")
			require.Len(t, tr.Pending(), map[bool]int{true: 1, false: 0}[c.want == Pending])
		})
	}
}

func TestTrustPendingBounded(t *testing.T) {
	tr := openTrust(t, t.TempDir(), PolicyManual, TrustOptions{MaxPending: 2})
	p1, p2, p3 := newTestPeer(t), newTestPeer(t), newTestPeer(t)

	for _, p := range []testPeer{p1, p2} {
		got, rej := tr.Evaluate(p.id, p.pub, identityOf("x"))
		require.Equal(t, Pending, got)
		require.Nil(t, rej)
	}
	got, rej := tr.Evaluate(p3.id, p3.pub, identityOf("x"))
	require.Equal(t, Rejected, got)
	requireReject(t, ReasonPendingFull, rej)
	require.False(t, rej.Reason.Bans(), "a full queue is no reason to ban")
	require.False(t, tr.IsPending(p3.id))

	// A peer already waiting is not counted twice.
	got, rej = tr.Evaluate(p1.id, p1.pub, identityOf("x"))
	require.Equal(t, Pending, got)
	require.Nil(t, rej)
	require.Len(t, tr.Pending(), 2)

	// An operator's decision still applies with the queue full.
	_, err := tr.Set(p3.id, DecisionAllow, "")
	require.NoError(t, err)
	got, rej = tr.Evaluate(p3.id, p3.pub, identityOf("x"))
	require.Equal(t, Verified, got)
	require.Nil(t, rej)

	// A slot freed lets the next one in.
	p4 := newTestPeer(t)
	tr.DropPending(p2.id)
	got, _ = tr.Evaluate(p4.id, p4.pub, identityOf("x"))
	require.Equal(t, Pending, got)
	require.Len(t, tr.Pending(), 2)
}

func TestTrustPendingExpires(t *testing.T) {
	clock := newFakeClock()
	const ttl = time.Minute
	tr := openTrust(t, t.TempDir(), PolicyManual, TrustOptions{MaxPending: 2, PendingTTL: ttl, Now: clock.Now})
	p1, p2, p3 := newTestPeer(t), newTestPeer(t), newTestPeer(t)

	out, _ := tr.Evaluate(p1.id, p1.pub, identityOf("one"))
	require.Equal(t, Pending, out)
	clock.Advance(30 * time.Second)
	out, _ = tr.Evaluate(p2.id, p2.pub, identityOf("two"))
	require.Equal(t, Pending, out)
	out, _ = tr.Evaluate(p3.id, p3.pub, identityOf("three"))
	require.Equal(t, Rejected, out, "queue full")

	clock.Advance(30 * time.Second) // p1 exactly at its expiry: still waiting
	require.True(t, tr.IsPending(p1.id))
	clock.Advance(time.Millisecond)
	require.False(t, tr.IsPending(p1.id))
	require.True(t, tr.IsPending(p2.id))
	pending := tr.Pending()
	require.Len(t, pending, 1)
	require.Equal(t, p2.id, pending[0].NodeID)

	out, rej := tr.Evaluate(p3.id, p3.pub, identityOf("three"))
	require.Equal(t, Pending, out, "the expired request freed its slot")
	require.Nil(t, rej)

	clock.Advance(ttl + time.Millisecond)
	require.Empty(t, tr.Pending())
}

func TestTrustPendingOldestFirst(t *testing.T) {
	clock := newFakeClock()
	const ttl = time.Hour
	tr := openTrust(t, t.TempDir(), PolicyManual, TrustOptions{PendingTTL: ttl, Now: clock.Now})
	var peers []testPeer
	for i := range 6 {
		p := newTestPeer(t)
		peers = append(peers, p)
		out, _ := tr.Evaluate(p.id, p.pub, identityOf(string(rune('a'+i))))
		require.Equal(t, Pending, out)
		clock.Advance(time.Second)
	}
	pending := tr.Pending()
	require.Len(t, pending, len(peers))
	for i, r := range pending {
		p := peers[i]
		require.Equal(t, p.id, r.NodeID, "position %d", i)
		require.Equal(t, string(rune('a'+i)), r.Name)
		require.Equal(t, RoleFull, r.Role)
		require.Equal(t, "v0.9.0", r.Version)
		require.Equal(t, "I am "+r.Name, r.Justification)
		require.Len(t, r.Addrs, 1)
		require.Equal(t, testNow.Add(time.Duration(i)*time.Second), r.Since)
		require.Equal(t, r.Since.Add(ttl), r.Expires)
		raw, err := base64.StdEncoding.DecodeString(r.PublicKey)
		require.NoError(t, err)
		pub, err := crypto.UnmarshalPublicKey(raw)
		require.NoError(t, err)
		require.True(t, pub.Equals(p.pub))
	}
}

func TestTrustSetPersists(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	tr := openTrust(t, dir, PolicyAllowlist, TrustOptions{Now: clock.Now})
	alice, mallory := newTestPeer(t), newTestPeer(t)

	rec, err := tr.Set(alice.id, DecisionAllow, "ticket 42")
	require.NoError(t, err)
	require.Equal(t, TrustRecord{NodeID: alice.id, Decision: DecisionAllow, Reason: "ticket 42", Created: testNow}, rec)
	path := filepath.Join(dir, TrustFileName)
	st1, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st1.Mode().Perm())

	clock.Advance(time.Minute)
	_, err = tr.Set(mallory.id, DecisionDeny, "spam")
	require.NoError(t, err)
	st2, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st2.Mode().Perm())
	require.False(t, os.SameFile(st1, st2), "the file is replaced by a rename, not rewritten in place")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	var f struct {
		Version int              `json:"version"`
		Records []map[string]any `json:"records"`
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &f))
	require.Equal(t, 1, f.Version)
	require.Len(t, f.Records, 2)

	want := tr.Records()
	require.Len(t, want, 2)
	for _, p := range []Policy{PolicyOpen, PolicyAllowlist, PolicyManual} {
		again := openTrust(t, dir, p, TrustOptions{Now: clock.Now})
		require.Equal(t, want, again.Records())
		out, _ := again.Evaluate(alice.id, alice.pub, identityOf("alice"))
		require.Equal(t, Verified, out, "%s", p)
		out, rej := again.Evaluate(mallory.id, mallory.pub, identityOf("mallory"))
		require.Equal(t, Rejected, out, "%s", p)
		requireReject(t, ReasonNotAllowed, rej)
	}

	// Revoking replaces the decision.
	rec, err = tr.Set(alice.id, DecisionDeny, "revoked")
	require.NoError(t, err)
	require.Equal(t, DecisionDeny, rec.Decision)
	again := openTrust(t, dir, PolicyOpen, TrustOptions{})
	require.Len(t, again.Records(), 2)
	out, _ := again.Evaluate(alice.id, alice.pub, identityOf("alice"))
	require.Equal(t, Rejected, out)
}

func TestTrustSetSettlesPending(t *testing.T) {
	dir := t.TempDir()
	tr := openTrust(t, dir, PolicyManual, TrustOptions{})
	bob, eve := newTestPeer(t), newTestPeer(t)
	for _, p := range []struct {
		testPeer
		name string
	}{{bob, "bob"}, {eve, "eve"}} {
		out, _ := tr.Evaluate(p.id, p.pub, identityOf(p.name))
		require.Equal(t, Pending, out)
	}

	bobRec, err := tr.Set(bob.id, DecisionAllow, "known to ops")
	require.NoError(t, err)
	require.Equal(t, "bob", bobRec.Name, "the record keeps the pending request's name")
	raw, err := base64.StdEncoding.DecodeString(bobRec.PublicKey)
	require.NoError(t, err)
	pub, err := crypto.UnmarshalPublicKey(raw)
	require.NoError(t, err)
	require.True(t, pub.Equals(bob.pub), "and its public key")
	require.False(t, tr.IsPending(bob.id))

	rec, err := tr.Set(eve.id, DecisionDeny, "")
	require.NoError(t, err)
	require.Equal(t, "eve", rec.Name)
	require.Empty(t, tr.Pending())

	out, rej := tr.Evaluate(bob.id, bob.pub, identityOf("bob"))
	require.Equal(t, Verified, out)
	require.Nil(t, rej)
	out, rej = tr.Evaluate(eve.id, eve.pub, identityOf("eve"))
	require.Equal(t, Rejected, out)
	requireReject(t, ReasonNotAllowed, rej)
	require.Empty(t, tr.Pending())

	// A later decision without a pending request keeps name and key.
	rec2, err := tr.Set(bob.id, DecisionDeny, "revoked")
	require.NoError(t, err)
	require.Equal(t, "bob", rec2.Name)
	require.Equal(t, bobRec.PublicKey, rec2.PublicKey)

	again := openTrust(t, dir, PolicyManual, TrustOptions{})
	recs := again.Records()
	require.Len(t, recs, 2)
	for _, r := range recs {
		if r.NodeID == bob.id {
			require.Equal(t, rec2, r, "name and key survive reopening")
		}
	}
}

// writeTrustFile writes a trust store by hand, with fields Set cannot
// produce (an expiry).
func writeTrustFile(t *testing.T, dir string, records []TrustRecord) {
	t.Helper()
	b, err := json.Marshal(trustFile{Version: 1, Records: records})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, TrustFileName), b, 0o600))
}

func TestTrustExpiredRecord(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	expiredAllow, expiredDeny, liveAllow := newTestPeer(t), newTestPeer(t), newTestPeer(t)
	writeTrustFile(t, dir, []TrustRecord{
		{NodeID: expiredAllow.id, Decision: DecisionAllow, Created: testNow.Add(-time.Hour), Expires: testNow.Add(-time.Second)},
		{NodeID: expiredDeny.id, Decision: DecisionDeny, Created: testNow.Add(-time.Hour), Expires: testNow.Add(-time.Second)},
		{NodeID: liveAllow.id, Decision: DecisionAllow, Created: testNow, Expires: testNow.Add(time.Hour)},
	})

	cases := []struct {
		policy Policy
		p      testPeer
		want   Outcome
	}{
		{PolicyAllowlist, expiredAllow, Rejected},
		{PolicyManual, expiredAllow, Pending},
		{PolicyOpen, expiredDeny, Verified},
		{PolicyAllowlist, liveAllow, Verified},
	}
	for _, c := range cases {
		tr := openTrust(t, dir, c.policy, TrustOptions{Now: clock.Now})
		out, _ := tr.Evaluate(c.p.id, c.p.pub, identityOf("x"))
		require.Equal(t, c.want, out, "%s", c.policy)
	}

	tr := openTrust(t, dir, PolicyAllowlist, TrustOptions{Now: clock.Now})
	clock.Advance(time.Hour) // liveAllow exactly at its expiry: still allowed
	out, _ := tr.Evaluate(liveAllow.id, liveAllow.pub, identityOf("x"))
	require.Equal(t, Verified, out)
	clock.Advance(time.Millisecond)
	out, rej := tr.Evaluate(liveAllow.id, liveAllow.pub, identityOf("x"))
	require.Equal(t, Rejected, out)
	requireReject(t, ReasonNotAllowed, rej)
}

// Unreadable records are skipped, not the whole store: losing a deny list
// would let revoked nodes back in. The file as it was is copied aside.
func TestOpenTrustDropsInvalidRecords(t *testing.T) {
	dir := t.TempDir()
	good := newTestPeer(t)
	writeTrustFile(t, dir, []TrustRecord{
		{NodeID: good.id, Decision: DecisionDeny},
		{NodeID: newTestPeer(t).id, Decision: "maybe"},
		{NodeID: newTestPeer(t).id, Decision: DecisionNone},
	})
	path := filepath.Join(dir, TrustFileName)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	clock := newFakeClock()
	tr, warn, err := OpenTrust(dir, PolicyAllowlist, TrustOptions{Now: clock.Now})
	require.NoError(t, err)
	require.ErrorContains(t, warn, "ignored 2 unreadable record(s)")
	recs := tr.Records()
	require.Len(t, recs, 1)
	require.Equal(t, good.id, recs[0].NodeID)
	aside := path + ".corrupt-" + testNow.UTC().Format("20060102T150405Z")
	kept, err := os.ReadFile(aside)
	require.NoError(t, err)
	require.Equal(t, before, kept)

	for name, content := range map[string]string{
		"bad node ID":   `{"version":1,"records":[{"node_id":"not-a-peer-id","decision":"allow"}]}`,
		"empty node ID": `{"version":1,"records":[{"node_id":"","decision":"deny"}]}`,
	} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, TrustFileName), []byte(content), 0o600))
		tr, warn, err := OpenTrust(dir, PolicyAllowlist, TrustOptions{})
		require.NoError(t, err, name)
		require.Error(t, warn, name)
		require.Empty(t, tr.Records(), name)
	}
}

func TestOpenTrustCorrupt(t *testing.T) {
	cases := map[string]string{
		"garbage":        "this is not JSON {",
		"truncated":      `{"version":1,"records":[{"node_id":"12D3Koo`,
		"version 2":      `{"version":2,"records":[]}`,
		"no version":     `{"records":[]}`,
		"null":           `null`,
		"wrong type":     `{"version":"1","records":[]}`,
		"records object": `{"version":1,"records":{}}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, TrustFileName)
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			clock := newFakeClock()

			tr, warn, err := OpenTrust(dir, PolicyAllowlist, TrustOptions{Now: clock.Now})
			require.NoError(t, err, "a corrupt store is a warning, not an error")
			require.Error(t, warn)
			require.NotNil(t, tr)
			require.Empty(t, tr.Records())

			aside := path + ".corrupt-" + testNow.UTC().Format("20060102T150405Z")
			require.Contains(t, warn.Error(), aside)
			kept, err := os.ReadFile(aside)
			require.NoError(t, err)
			require.Equal(t, content, string(kept), "the corrupt file is kept unchanged")
			_, err = os.Stat(path)
			require.ErrorIs(t, err, os.ErrNotExist)

			// The store works from empty and never touches the copy.
			p := newTestPeer(t)
			_, err = tr.Set(p.id, DecisionAllow, "")
			require.NoError(t, err)
			kept, err = os.ReadFile(aside)
			require.NoError(t, err)
			require.Equal(t, content, string(kept))
			again := openTrust(t, dir, PolicyAllowlist, TrustOptions{})
			require.Len(t, again.Records(), 1)
		})
	}
}

func TestTrustSetInvalidDecision(t *testing.T) {
	dir := t.TempDir()
	tr := openTrust(t, dir, PolicyManual, TrustOptions{})
	p := newTestPeer(t)
	out, _ := tr.Evaluate(p.id, p.pub, identityOf("x"))
	require.Equal(t, Pending, out)
	for _, d := range []Decision{DecisionNone, "maybe", "ALLOW", "allow "} {
		_, err := tr.Set(p.id, d, "")
		require.Error(t, err, "%q", d)
	}
	require.Empty(t, tr.Records())
	require.True(t, tr.IsPending(p.id), "a refused decision settles nothing")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// A decision that cannot be saved is not kept in memory either, and the
// request stays pending.
func TestTrustSetSaveFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	tr := openTrust(t, dir, PolicyManual, TrustOptions{})
	p := newTestPeer(t)
	out, _ := tr.Evaluate(p.id, p.pub, identityOf("x"))
	require.Equal(t, Pending, out)
	_, err := tr.Set(p.id, DecisionAllow, "")
	require.Error(t, err)
	require.Empty(t, tr.Records())
	require.True(t, tr.IsPending(p.id))

	require.NoError(t, os.Mkdir(dir, 0o700))
	_, err = tr.Set(p.id, DecisionDeny, "first")
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	_, err = tr.Set(p.id, DecisionAllow, "second")
	require.Error(t, err)
	recs := tr.Records()
	require.Len(t, recs, 1)
	require.Equal(t, DecisionDeny, recs[0].Decision, "the previous decision is restored")
}

// Concurrent use, for the race detector.
func TestTrustConcurrent(t *testing.T) {
	tr := openTrust(t, t.TempDir(), PolicyManual, TrustOptions{MaxPending: 8})
	peers := make([]testPeer, 16)
	for i := range peers {
		peers[i] = newTestPeer(t)
	}
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			for range 5 {
				tr.Evaluate(p.id, p.pub, identityOf("x"))
				tr.Pending()
				tr.IsPending(p.id)
			}
			if i%4 == 0 {
				_, err := tr.Set(p.id, DecisionAllow, "")
				assert.NoError(t, err)
			}
			tr.Records()
		})
	}
	wg.Wait()
	require.LessOrEqual(t, len(tr.Pending()), 8)
	require.Len(t, tr.Records(), 4)
}
