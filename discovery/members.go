package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peernode/internal/atomicfile"
)

// DefaultStaleAfter is how long a member may stay silent before it is
// pruned: four announce intervals of 30 s.
const DefaultStaleAfter = 120 * time.Second

// Source says how a member entered the table.
type Source string

// Sources.
const (
	SourceGossip   Source = "gossip"   // its announcement on the topic
	SourceRegistry Source = "registry" // it was verified before announcing
	SourceExchange Source = "exchange" // a peer-exchange answer
	SourceSaved    Source = "saved"    // the table saved before a restart
	SourceFarewell Source = "farewell" // its leaving, told us directly (LeaveProtocol)
)

// Member is one entry of the table.
type Member struct {
	NodeID peer.ID
	// Announcement is the last one accepted; for a member known only from
	// the registry it holds what the handshake told.
	Announcement Announcement
	// Signed is the announcement as its node signed it, for peer exchange;
	// nil until one arrives.
	Signed     []byte
	FirstHeard time.Time
	LastHeard  time.Time
	Source     Source
}

// EventKind says what happened to a member.
type EventKind string

// Event kinds.
const (
	EventJoined  EventKind = "joined"
	EventUpdated EventKind = "updated"
	EventPruned  EventKind = "pruned"
	EventLeft    EventKind = "left"
)

// Event is a change of the table.
type Event struct {
	Kind   EventKind
	Member Member
}

// Table is the member table. Each member carries its own deadline, armed
// at LastHeard+StaleAfter, so a silent member is pruned at that moment,
// not at the next sweep. It is safe for concurrent use; notify is called
// outside the lock and must not block.
type Table struct {
	staleAfter time.Duration
	clk        clock.Clock
	notify     func(Event)

	mu      sync.Mutex
	members map[peer.ID]*entry
	// left remembers, for StaleAfter, the sequence number of each
	// member's leaving announcement: an older announcement of its still
	// travelling (gossip, a peer-exchange answer) must not bring it back.
	left   map[peer.ID]tombstone
	closed bool
}

type tombstone struct {
	seq     uint64
	expires time.Time
}

type entry struct {
	m     Member
	timer *clock.Timer
}

// NewTable returns an empty table. clk may be nil (the real clock); notify
// may be nil.
func NewTable(staleAfter time.Duration, clk clock.Clock, notify func(Event)) *Table {
	if clk == nil {
		clk = clock.New()
	}
	if notify == nil {
		notify = func(Event) {}
	}
	return &Table{staleAfter: staleAfter, clk: clk, notify: notify, members: map[peer.ID]*entry{}, left: map[peer.ID]tombstone{}}
}

// Observe records an accepted announcement. A leaving announcement removes
// the member at once. It reports whether the table changed.
func (t *Table) Observe(a Announcement, signed []byte, src Source) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	e := t.members[a.NodeID]
	if e != nil && e.m.Signed != nil && a.Seq <= e.m.Announcement.Seq {
		t.mu.Unlock()
		return false
	}
	now := t.clk.Now()
	if tomb, ok := t.left[a.NodeID]; ok {
		switch {
		case !now.Before(tomb.expires):
			delete(t.left, a.NodeID)
		case a.Seq <= tomb.seq:
			t.mu.Unlock()
			return false // said before it left
		default:
			delete(t.left, a.NodeID) // back, with a newer announcement
		}
	}
	if a.Leaving {
		t.buryLocked(a.NodeID, a.Seq, now)
		if e == nil {
			t.mu.Unlock()
			return false
		}
		e.timer.Stop()
		delete(t.members, a.NodeID)
		m := e.m
		t.mu.Unlock()
		prunedLeft.Inc()
		t.notify(Event{Kind: EventLeft, Member: m})
		return true
	}
	kind := EventUpdated
	if e == nil {
		e = &entry{m: Member{NodeID: a.NodeID, FirstHeard: now}}
		t.members[a.NodeID] = e
		kind = EventJoined
	}
	e.m.Announcement, e.m.Signed, e.m.LastHeard, e.m.Source = a, signed, now, src
	t.armLocked(e)
	m := e.m
	t.mu.Unlock()
	t.notify(Event{Kind: kind, Member: m})
	return true
}

// buryLocked keeps id's leaving sequence number for StaleAfter, and drops
// the tombstones that expired.
func (t *Table) buryLocked(id peer.ID, seq uint64, now time.Time) {
	for other, tomb := range t.left {
		if !now.Before(tomb.expires) {
			delete(t.left, other)
		}
	}
	t.left[id] = tombstone{seq: seq, expires: now.Add(t.staleAfter)}
}

// Verified adds a node the registry verified, before its first
// announcement; a member already in the table is only refreshed.
func (t *Table) Verified(id peer.ID, name, role string, addrs []ma.Multiaddr) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := t.clk.Now()
	if tomb, ok := t.left[id]; ok && now.Before(tomb.expires) {
		// It said it leaves: a verification (possibly of a connection
		// from before, its event processed late) does not bring it back;
		// its next announcement, newer than the leaving one, does.
		t.mu.Unlock()
		return
	}
	e := t.members[id]
	if e != nil {
		e.m.LastHeard = now
		t.armLocked(e)
		t.mu.Unlock()
		return
	}
	e = &entry{m: Member{NodeID: id, FirstHeard: now, LastHeard: now, Source: SourceRegistry,
		Announcement: Announcement{NodeID: id, Name: name, Role: role, Addrs: addrs}}}
	t.members[id] = e
	t.armLocked(e)
	m := e.m
	t.mu.Unlock()
	t.notify(Event{Kind: EventJoined, Member: m})
}

// armLocked (re)sets the member's deadline to LastHeard+StaleAfter.
func (t *Table) armLocked(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	id, heard := e.m.NodeID, e.m.LastHeard
	d := heard.Add(t.staleAfter).Sub(t.clk.Now())
	e.timer = t.clk.AfterFunc(d, func() { t.expire(id, heard) })
}

// expire prunes id if nothing was heard from it since heard.
func (t *Table) expire(id peer.ID, heard time.Time) {
	t.mu.Lock()
	e := t.members[id]
	if t.closed || e == nil || !e.m.LastHeard.Equal(heard) {
		t.mu.Unlock()
		return
	}
	delete(t.members, id)
	m := e.m
	t.mu.Unlock()
	prunedStale.Inc()
	t.notify(Event{Kind: EventPruned, Member: m})
}

// LastSeq returns the sequence number of the last announcement accepted
// from id.
func (t *Table) LastSeq(id peer.ID) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.members[id]
	if e == nil || e.m.Signed == nil {
		return 0, false
	}
	return e.m.Announcement.Seq, true
}

// Get returns one member.
func (t *Table) Get(id peer.ID) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.members[id]
	if e == nil {
		return Member{}, false
	}
	return e.m, true
}

// Members returns the table, by node ID.
func (t *Table) Members() []Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Member, 0, len(t.members))
	for _, e := range t.members {
		out = append(out, e.m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Len is the number of members.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.members)
}

// Signed returns up to max signed announcements, most recently heard
// first: a peer-exchange answer.
func (t *Table) Signed(max int) [][]byte {
	ms := t.Members()
	sort.Slice(ms, func(i, j int) bool { return ms[i].LastHeard.After(ms[j].LastHeard) })
	var out [][]byte
	for _, m := range ms {
		if len(out) == max {
			break
		}
		if m.Signed != nil {
			out = append(out, m.Signed)
		}
	}
	return out
}

// Close stops every deadline; the table no longer changes.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, e := range t.members {
		e.timer.Stop()
	}
}

// savedMember is a member as the table file keeps it.
type savedMember struct {
	NodeID    peer.ID   `json:"node_id"`
	Name      string    `json:"name,omitempty"`
	Addrs     []string  `json:"addrs"`
	LastHeard time.Time `json:"last_heard"`
	// Signed is the last signed announcement, re-verified on load.
	Signed []byte `json:"signed,omitempty"`
}

type tableFile struct {
	Version int           `json:"version"`
	Members []savedMember `json:"members"`
}

// Save writes the table to path atomically.
func (t *Table) Save(path string) error {
	f := tableFile{Version: 1, Members: []savedMember{}}
	for _, m := range t.Members() {
		s := savedMember{NodeID: m.NodeID, Name: m.Announcement.Name, LastHeard: m.LastHeard.UTC(), Signed: m.Signed, Addrs: []string{}}
		for _, a := range m.Announcement.Addrs {
			s.Addrs = append(s.Addrs, a.String())
		}
		f.Members = append(f.Members, s)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// ErrCorruptTable is wrapped when the saved table cannot be read.
var ErrCorruptTable = errors.New("member table file is corrupt")

// Load adds the members saved at path as SourceSaved, each given a full
// StaleAfter from now to announce itself before it is pruned. A missing
// file is an empty table. Entries that fail to parse or whose signed
// announcement does not verify are skipped and counted.
func (t *Table) Load(path string) (loaded, skipped int, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read member table: %w", err)
	}
	var f struct {
		Version int               `json:"version"`
		Members []json.RawMessage `json:"members"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
		return 0, 0, fmt.Errorf("%w: %s: %v", ErrCorruptTable, path, err)
	}
	for _, raw := range f.Members {
		m, ok := parseSaved(raw)
		if !ok {
			skipped++
			continue
		}
		t.restore(m)
		loaded++
	}
	return loaded, skipped, nil
}

func parseSaved(raw json.RawMessage) (Member, bool) {
	var s savedMember
	if json.Unmarshal(raw, &s) != nil || s.NodeID.Validate() != nil {
		return Member{}, false
	}
	m := Member{NodeID: s.NodeID, FirstHeard: s.LastHeard, LastHeard: s.LastHeard, Source: SourceSaved,
		Announcement: Announcement{NodeID: s.NodeID, Name: s.Name}}
	if s.Signed != nil {
		a, err := Open(s.Signed)
		if err != nil || a.NodeID != s.NodeID {
			return Member{}, false
		}
		m.Announcement, m.Signed = a, s.Signed
		return m, true
	}
	for _, str := range s.Addrs {
		a, err := ma.NewMultiaddr(str)
		if err != nil {
			return Member{}, false
		}
		m.Announcement.Addrs = append(m.Announcement.Addrs, a)
	}
	return m, true
}

// restore adds a saved member unless the table already knows it.
func (t *Table) restore(m Member) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.members[m.NodeID] != nil {
		return
	}
	e := &entry{m: m}
	t.members[m.NodeID] = e
	// Its deadline runs from now: a restarted node gives every saved member
	// a full StaleAfter to be heard again.
	id := m.NodeID
	e.timer = t.clk.AfterFunc(t.staleAfter, func() { t.expire(id, m.LastHeard) })
}
