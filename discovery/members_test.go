package discovery

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

func newTestTable(t *testing.T) (*Table, *clock.Mock, *recorder) {
	clk := clock.NewMock()
	clk.Set(now)
	rec := &recorder{}
	tbl := NewTable(10*time.Second, clk, rec.add)
	t.Cleanup(tbl.Close)
	return tbl, clk, rec
}

// A silent member is pruned at LastHeard+StaleAfter exactly: not before,
// and not at some later sweep. Hearing from it moves the deadline.
func TestPrunedAtItsDeadline(t *testing.T) {
	tbl, clk, rec := newTestTable(t)
	n := newTestNode(t)
	a := n.ann(1)
	require.True(t, tbl.Observe(a, n.signed(t, a), SourceGossip))

	clk.Add(6 * time.Second)
	a2 := n.ann(2)
	require.True(t, tbl.Observe(a2, n.signed(t, a2), SourceGossip))
	clk.Add(9999 * time.Millisecond) // 1 ms before the new deadline
	_, ok := tbl.Get(n.id)
	require.True(t, ok, "a live member must not be pruned early")
	clk.Add(time.Millisecond)
	_, ok = tbl.Get(n.id)
	require.False(t, ok, "pruned at the deadline")
	require.Equal(t, []EventKind{EventJoined, EventUpdated, EventPruned}, rec.kinds())
}

func TestLeavingRemovedAtOnce(t *testing.T) {
	tbl, _, rec := newTestTable(t)
	n := newTestNode(t)
	a := n.ann(1)
	tbl.Observe(a, n.signed(t, a), SourceGossip)
	bye := n.ann(2)
	bye.Leaving = true
	require.True(t, tbl.Observe(bye, n.signed(t, bye), SourceGossip))
	_, ok := tbl.Get(n.id)
	require.False(t, ok)
	require.Equal(t, []EventKind{EventJoined, EventLeft}, rec.kinds())
}

// After a member left, an announcement it made before leaving (still
// travelling through gossip or a peer-exchange answer) does not bring it
// back, nor does a verification (whose event may come late); a newer
// announcement (it restarted) does, and the memory of the leaving ends
// after StaleAfter.
func TestLeftMemberStaysGone(t *testing.T) {
	tbl, clk, rec := newTestTable(t)
	n := newTestNode(t)
	a := n.ann(1)
	tbl.Observe(a, n.signed(t, a), SourceGossip)
	bye := n.ann(3)
	bye.Leaving = true
	require.True(t, tbl.Observe(bye, n.signed(t, bye), SourceGossip))

	late := n.ann(2)
	require.False(t, tbl.Observe(late, n.signed(t, late), SourceExchange), "an announcement from before the leaving one")
	_, ok := tbl.Get(n.id)
	require.False(t, ok)
	again := n.ann(3)
	require.False(t, tbl.Observe(again, n.signed(t, again), SourceGossip))

	back := n.ann(4)
	require.True(t, tbl.Observe(back, n.signed(t, back), SourceGossip), "a newer announcement: it is back")
	_, ok = tbl.Get(n.id)
	require.True(t, ok)
	require.Equal(t, []EventKind{EventJoined, EventLeft, EventJoined}, rec.kinds())

	// Leaving again, then a verification (its event may have been late):
	// still gone until it announces anew.
	bye2 := n.ann(5)
	bye2.Leaving = true
	require.True(t, tbl.Observe(bye2, n.signed(t, bye2), SourceGossip))
	tbl.Verified(n.id, "n", "full", nil)
	_, ok = tbl.Get(n.id)
	require.False(t, ok, "a verification does not undo a leaving")

	// The memory of a leaving lasts StaleAfter: an old announcement after
	// that is taken like any (it would go stale on its own).
	old := n.ann(5)
	require.False(t, tbl.Observe(old, n.signed(t, old), SourceGossip))
	clk.Add(10 * time.Second)
	require.True(t, tbl.Observe(old, n.signed(t, old), SourceGossip))
	tbl.Verified(n.id, "n", "full", nil)
	_, ok = tbl.Get(n.id)
	require.True(t, ok)
}

func TestOldSequenceIgnoredAndVerifiedJoins(t *testing.T) {
	tbl, clk, rec := newTestTable(t)
	n := newTestNode(t)
	a := n.ann(5)
	tbl.Observe(a, n.signed(t, a), SourceGossip)
	old := n.ann(4)
	require.False(t, tbl.Observe(old, n.signed(t, old), SourceGossip))
	seq, ok := tbl.LastSeq(n.id)
	require.True(t, ok)
	require.Equal(t, uint64(5), seq)

	// A verified node joins before announcing; its first announcement
	// then fills it in.
	v := newTestNode(t)
	tbl.Verified(v.id, "v", "client", nil)
	m, ok := tbl.Get(v.id)
	require.True(t, ok)
	require.Equal(t, SourceRegistry, m.Source)
	_, ok = tbl.LastSeq(v.id)
	require.False(t, ok)
	require.Len(t, tbl.Signed(10), 1, "only signed announcements are exchanged")
	clk.Add(5 * time.Second)
	va := v.ann(1)
	tbl.Observe(va, v.signed(t, va), SourceGossip)
	require.Len(t, tbl.Signed(10), 2)
	require.Len(t, tbl.Signed(1), 1, "capped")
	require.Equal(t, []EventKind{EventJoined, EventJoined, EventUpdated}, rec.kinds())
}

// The table survives a restart: saved members come back, each with a full
// StaleAfter to be heard from again; tampered entries are skipped.
func TestSaveAndLoad(t *testing.T) {
	tbl, _, _ := newTestTable(t)
	a, b := newTestNode(t), newTestNode(t)
	aa := a.ann(3)
	tbl.Observe(aa, a.signed(t, aa), SourceGossip)
	tbl.Verified(b.id, "b", "full", nil)
	path := filepath.Join(t.TempDir(), "members.json")
	require.NoError(t, tbl.Save(path))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, clk, _ := newTestTable(t)
	loaded, skipped, err := again.Load(path)
	require.NoError(t, err)
	require.Equal(t, 2, loaded)
	require.Zero(t, skipped)
	m, ok := again.Get(a.id)
	require.True(t, ok)
	require.Equal(t, SourceSaved, m.Source)
	require.Equal(t, uint64(3), m.Announcement.Seq)
	require.Len(t, m.Announcement.Addrs, 1)
	clk.Add(10 * time.Second)
	require.Empty(t, again.Members(), "saved members not heard again are pruned after StaleAfter")

	// A corrupt file is an error; a tampered entry is skipped.
	bad := filepath.Join(t.TempDir(), "members.json")
	require.NoError(t, os.WriteFile(bad, []byte("{nope"), 0o600))
	_, _, err = again.Load(bad)
	require.ErrorIs(t, err, ErrCorruptTable)
	tampered := filepath.Join(t.TempDir(), "members.json")
	require.NoError(t, os.WriteFile(tampered, []byte(`{"version":1,"members":[{"node_id":"`+a.id.String()+`","addrs":[],"last_heard":"2026-11-22T12:00:00Z","signed":"AAEC"},{"node_id":"bad"}]}`), 0o600))
	loaded, skipped, err = again.Load(tampered)
	require.NoError(t, err)
	require.Zero(t, loaded)
	require.Equal(t, 2, skipped)
	_, _, err = again.Load(filepath.Join(t.TempDir(), "missing.json"))
	require.NoError(t, err, "no file is an empty table")
}
