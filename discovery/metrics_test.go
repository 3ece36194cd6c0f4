package discovery

import (
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pspb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// value reads a counter (whose Write cannot fail).
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// counts reads every discovery counter.
func counts() map[string]float64 {
	return map[string]float64{
		"sent/accepted": value(sentAccepted), "sent/error": value(sentError),
		"received/accepted": value(receivedAccepted), "received/rejected": value(receivedRejected),
		"received/ignored": value(receivedIgnored), "pruned/stale": value(prunedStale), "pruned/left": value(prunedLeft),
	}
}

// requireMoved checks that exactly the named counters moved, by one each.
func requireMoved(t *testing.T, before map[string]float64, moved ...string) {
	t.Helper()
	want := map[string]float64{}
	for k, v := range before {
		want[k] = v
	}
	for _, k := range moved {
		want[k]++
	}
	require.Equal(t, want, counts())
}

// The validator counts each verdict on an announcement a peer forwarded,
// and none on our own (publish counts those).
func TestMetricsCountValidatorVerdicts(t *testing.T) {
	tbl, _, _ := newTestTable(t)
	self, author, other := newTestNode(t), newTestNode(t), newTestNode(t)
	a := &Announcer{self: self.id, cfg: AnnouncerConfig{Table: tbl}}
	msg := func(from peer.ID, receivedFrom peer.ID, data []byte) *pubsub.Message {
		return &pubsub.Message{Message: &pspb.Message{Data: data, From: []byte(from)}, ReceivedFrom: receivedFrom}
	}
	fresh := author.ann(1)
	fresh.Time = time.Now()
	stale := author.ann(2)
	stale.Time = time.Now().Add(-time.Hour)
	for _, c := range []struct {
		name  string
		msg   *pubsub.Message
		want  pubsub.ValidationResult
		moved []string
	}{
		{"accepted", msg(author.id, other.id, author.signed(t, fresh)), pubsub.ValidationAccept, []string{"received/accepted"}},
		{"ignored", msg(author.id, other.id, author.signed(t, stale)), pubsub.ValidationIgnore, []string{"received/ignored"}},
		{"rejected", msg(other.id, other.id, author.signed(t, fresh)), pubsub.ValidationReject, []string{"received/rejected"}},
		{"our own", msg(self.id, self.id, self.signed(t, Announcement{NodeID: self.id, Seq: 1, Time: time.Now()})), pubsub.ValidationAccept, nil},
	} {
		before := counts()
		require.Equal(t, c.want, a.validate(t.Context(), c.msg.ReceivedFrom, c.msg), c.name)
		requireMoved(t, before, c.moved...)
	}
}

// The member table counts a member that left and one pruned as stale.
func TestMetricsCountPrunes(t *testing.T) {
	tbl, clk, _ := newTestTable(t)
	leaver, silent := newTestNode(t), newTestNode(t)
	before := counts()
	a := leaver.ann(1)
	require.True(t, tbl.Observe(a, leaver.signed(t, a), SourceGossip))
	s := silent.ann(1)
	require.True(t, tbl.Observe(s, silent.signed(t, s), SourceGossip))
	bye := leaver.ann(2)
	bye.Leaving = true
	require.True(t, tbl.Observe(bye, leaver.signed(t, bye), SourceGossip))
	requireMoved(t, before, "pruned/left")
	clk.Add(10 * time.Second)
	_, ok := tbl.Get(silent.id)
	require.False(t, ok)
	requireMoved(t, before, "pruned/left", "pruned/stale")
}
