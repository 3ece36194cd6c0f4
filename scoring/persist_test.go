package scoring_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/scoring"
)

// requireSameExplanation checks that two books explain p alike.
func requireSameExplanation(t *testing.T, a, b *scoring.Book, p peer.ID) {
	t.Helper()
	ea, eb := a.Explain(p), b.Explain(p)
	require.InDelta(t, ea.Score, eb.Score, 1e-12, "score of %s", p)
	require.Equal(t, ea.SmoothedRTT, eb.SmoothedRTT, "smoothed RTT of %s", p)
	require.Len(t, eb.Components, len(ea.Components))
	for i, ca := range ea.Components {
		cb := eb.Components[i]
		require.True(t, ca.Last.Equal(cb.Last), "%s of %s: last %s, restored %s", ca.Name, p, ca.Last, cb.Last)
		ca.Last, cb.Last = time.Time{}, time.Time{}
		require.InDelta(t, ca.Value, cb.Value, 1e-12, "%s of %s", ca.Name, p)
		ca.Value, cb.Value, ca.Contribution, cb.Contribution = 0, 0, 0, 0
		require.Equal(t, ca, cb, "%s of %s", ca.Name, p)
	}
}

func TestPersistRoundTrip(t *testing.T) {
	a, mockA := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(60, 40)
	rng := rand.New(rand.NewPCG(40, 41))
	randomHistory(a, mockA, ids, rng, 1500, historyOpts{})
	decide(a, mockA) // failures still held are not saved: see TestMarshalKeepsHeldFailures
	require.Positive(t, a.Len())

	data, err := a.MarshalJSON()
	require.NoError(t, err)
	b, mockB := newMockBook(t, scoring.DefaultParams())
	mockB.Set(mockA.Now())
	restored, skipped, err := b.Restore(data)
	require.NoError(t, err)
	require.Equal(t, a.Len(), restored)
	require.Zero(t, skipped)
	require.Equal(t, a.Len(), b.Len())

	distinct := map[float64]bool{}
	for _, id := range ids {
		requireSameExplanation(t, a, b, id)
		distinct[a.Score(id)] = true
	}
	require.Greater(t, len(distinct), len(ids)/2, "the histories must differ for the test to mean something")

	// The saved decayed quantities keep decaying alike.
	for _, d := range []time.Duration{time.Minute, 10 * time.Minute, 50 * time.Minute} {
		mockA.Add(d)
		mockB.Add(d)
		for _, id := range ids {
			requireSameExplanation(t, a, b, id)
		}
	}
}

// TestMarshalKeepsHeldFailures: a failure reported within LocalFaultWindow
// of saving is still held; it must not be lost on the way to disk.
func TestMarshalKeepsHeldFailures(t *testing.T) {
	a, mockA := newMockBook(t, scoring.DefaultParams())
	ids := testIDs(10, 42)
	for _, id := range ids {
		a.Connected(id)
		for range 3 {
			a.ReportRequest(id, testProto, 10*time.Millisecond, scoring.Success)
		}
	}
	mockA.Add(time.Second)
	a.ReportRequest(ids[0], testProto, 0, scoring.Failure)
	data, err := a.MarshalJSON()
	require.NoError(t, err)

	b, mockB := newMockBook(t, scoring.DefaultParams())
	mockB.Set(mockA.Now())
	_, _, err = b.Restore(data)
	require.NoError(t, err)
	decide(a, mockA)
	decide(b, mockB)
	require.InDelta(t, a.Score(ids[0]), b.Score(ids[0]), 1e-12, "the failure held at saving time")
}

func TestRestoreCorrupt(t *testing.T) {
	cases := []struct{ name, data string }{
		{"empty", ""},
		{"not JSON", "scores"},
		{"truncated", `{"version":1,"peers":[{"peer":`},
		{"array", `[]`},
		{"null version", `{"version":"1","peers":[]}`},
		{"peers not a list", `{"version":1,"peers":{}}`},
		{"no version", `{"peers":[]}`},
		{"version 0", `{"version":0,"peers":[]}`},
		{"version 2", `{"version":2,"peers":[]}`},
		{"negative version", `{"version":-1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := newMockBook(t, scoring.DefaultParams())
			restored, skipped, err := b.Restore([]byte(tc.data))
			require.ErrorIs(t, err, scoring.ErrCorruptScores)
			require.Zero(t, restored)
			require.Zero(t, skipped)
			require.Zero(t, b.Len())
		})
	}
}

// savedFile returns a MarshalJSON output of a book whose peers all have
// answered requests, a failure and a penalty.
func savedFile(t *testing.T, ids []peer.ID) []byte {
	a, mock := newMockBook(t, scoring.DefaultParams())
	for i, id := range ids {
		a.Connected(id)
		a.ReportRequest(id, testProto, time.Duration(i+1)*time.Millisecond, scoring.Success)
		a.ReportRequest(id, testProto, 0, scoring.Failure)
		a.Penalize(id, 0.5)
		a.Announced(id, mock.Now())
		// Failures more than two windows apart: each peer's own, not a
		// local fault of the book's.
		mock.Add(3 * scoring.DefaultParams().LocalFaultWindow)
	}
	decide(a, mock)
	data, err := a.MarshalJSON()
	require.NoError(t, err)
	return data
}

func TestRestoreSkipsBadEntries(t *testing.T) {
	good := testIDs(3, 43)
	var file struct {
		Version int               `json:"version"`
		Peers   []json.RawMessage `json:"peers"`
	}
	require.NoError(t, json.Unmarshal(savedFile(t, good), &file))
	entries := []string{
		`{"peer":"notapeer","successes":1}`,
		`{"peer":"","successes":1}`,
		`{"successes":1}`,
		`42`,
		`"peer"`,
		`null`,
		`[]`,
		`{"peer":"%s","successes":-1}`,
		`{"peer":"%s","failures":-0.5}`,
		`{"peer":"%s","penalty":-2}`,
		`{"peer":"%s","rtt_ns":-5,"rtt_samples":1}`,
		`{"peer":"%s","rtt_ns":5,"rtt_samples":-1}`,
		`{"peer":"%s","requests":-1}`,
		`{"peer":"%s","penalties":-3}`,
		`{"peer":"%s","rtt_samples":3}`,
		`{"peer":"%s","rtt_ns":5000000}`,
		`{"peer":"%s","successes":1e400}`,
		`{"peer":"%s","failures":-1e400}`,
		`{"peer":"%s","successes":"many"}`,
		`{"peer":"%s","counts_at":"yesterday"}`,
		`{"peer":"%s","rtt_ns":1e30,"rtt_samples":1}`,
	}
	bad := testIDs(len(entries), 44)
	for i, e := range entries {
		if strings.Contains(e, "%s") {
			e = fmt.Sprintf(e, bad[i])
		}
		file.Peers = append(file.Peers, json.RawMessage(e))
	}
	data, err := json.Marshal(file)
	require.NoError(t, err)

	b, _ := newMockBook(t, scoring.DefaultParams())
	restored, skipped, err := b.Restore(data)
	require.NoError(t, err)
	require.Equal(t, len(good), restored)
	require.Equal(t, len(entries), skipped)
	require.Equal(t, len(good), b.Len())
	prior := b.Score(testIDs(1, 99)[0])
	for _, id := range bad {
		require.Equal(t, prior, b.Score(id), "a skipped entry leaves no trace")
	}
	for _, id := range good {
		require.Equal(t, 2, component(t, b.Explain(id), scoring.ComponentReliability).Samples)
	}
}

// TestRestoreExtremeButValid: values a book would not produce but that
// parse and pass the checks keep every score in [0, 1].
func TestRestoreExtremeButValid(t *testing.T) {
	ids := testIDs(4, 45)
	data := fmt.Sprintf(`{"version":1,"peers":[
		{"peer":"%s","successes":1e308,"failures":1e308,"counts_at":"9999-12-31T23:59:59Z"},
		{"peer":"%s","successes":1.7e308,"penalty":1.7e308,"penalty_at":"0001-01-01T00:00:01Z"},
		{"peer":"%s","rtt_ns":3600000000000,"rtt_samples":2147483647,"requests":9223372036854775807},
		{"peer":"%s","announced":"9999-12-31T23:59:59Z","failures":5e-324}
	]}`, ids[0], ids[1], ids[2], ids[3])
	b, mock := newMockBook(t, scoring.DefaultParams())
	restored, skipped, err := b.Restore([]byte(data))
	require.NoError(t, err)
	require.Equal(t, 4, restored)
	require.Zero(t, skipped)
	for range 3 {
		for _, id := range ids {
			requireExplained(t, b, id)
		}
		mock.Add(time.Hour)
	}
}

// TestRestoreHugeRTTKeepsLatencyInRange: Restore's sanity check promises
// to refuse "values no book produces: they would break the score's
// range".
func TestRestoreHugeRTTKeepsLatencyInRange(t *testing.T) {
	id := testIDs(1, 46)[0]
	data := fmt.Sprintf(`{"version":1,"peers":[{"peer":"%s","rtt_ns":9223372036854775807,"rtt_samples":1,
		"successes":1e308,"failures":1e308,"announced":"1960-01-01T00:00:00Z","penalty":1e308}]}`, id)
	b, _ := newMockBook(t, scoring.DefaultParams())
	restored, _, err := b.Restore([]byte(data))
	require.NoError(t, err)
	if restored == 0 {
		return // refusing the entry is a fine answer too
	}
	lat := component(t, b.Explain(id), scoring.ComponentLatency)
	require.GreaterOrEqual(t, lat.Value, 0.0, "latency component %+v", lat)
	require.GreaterOrEqual(t, b.Score(id), 0.0)
}

func TestRestoreDoesNotOverwrite(t *testing.T) {
	ids := testIDs(3, 47)
	data := savedFile(t, ids)

	b, _ := newMockBook(t, scoring.DefaultParams())
	b.Connected(ids[0])
	b.Penalize(ids[0], 5)
	b.ReportRequest(ids[0], testProto, 400*time.Millisecond, scoring.Success)
	before := b.Explain(ids[0])

	restored, skipped, err := b.Restore(data)
	require.NoError(t, err)
	require.Equal(t, 2, restored, "the tracked peer is not restored")
	require.Zero(t, skipped)
	require.Equal(t, before, b.Explain(ids[0]), "the live record wins")

	// Restoring the same file again adds nothing.
	restored, skipped, err = b.Restore(data)
	require.NoError(t, err)
	require.Zero(t, restored)
	require.Zero(t, skipped)
}

func TestRestoredPeersExpireUnlessConnected(t *testing.T) {
	ids := testIDs(2, 48)
	b, mock := newMockBook(t, scoring.DefaultParams())
	_, _, err := b.Restore(savedFile(t, ids))
	require.NoError(t, err)
	b.Connected(ids[1])
	mock.Add(b.Params().Retention + time.Second)
	b.Sweep()
	require.Equal(t, 1, b.Len())
	require.Equal(t, 2, component(t, b.Explain(ids[1]), scoring.ComponentReliability).Samples)
}

func FuzzRestore(f *testing.F) {
	ids := testIDs(3, 49)
	a, mock := newMockBook(f, scoring.DefaultParams())
	randomHistory(a, mock, ids, rand.New(rand.NewPCG(49, 50)), 200, historyOpts{})
	decide(a, mock)
	valid, err := a.MarshalJSON()
	require.NoError(f, err)
	f.Add(valid)
	f.Add([]byte(`{"version":1,"peers":[]}`))
	f.Add([]byte(`{"version":1,"peers":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"peers":[1,"x",{},null]}`))
	f.Add([]byte(fmt.Sprintf(`{"version":1,"peers":[{"peer":"%s","successes":1e308,"failures":1e308,`+
		`"penalty":1e308,"rtt_ns":1,"rtt_samples":1,"counts_at":"0001-01-01T00:00:00Z"}]}`, ids[0])))
	f.Add([]byte(fmt.Sprintf(`{"version":1,"peers":[{"peer":"%s","rtt_ns":9000000000000000000,"rtt_samples":1,`+
		`"announced":"9999-12-31T23:59:59Z","penalty_at":"9999-12-31T23:59:59Z","penalty":3}]}`, ids[1])))
	f.Add([]byte(fmt.Sprintf(`{"version":1,"peers":[{"peer":"%s","successes":-1},{"peer":"%s"},{"peer":"%s"}]}`,
		ids[0], ids[1], ids[1])))
	f.Add([]byte("\x00\xff{"))

	f.Fuzz(func(t *testing.T, data []byte) {
		b, mock := newMockBook(t, scoring.DefaultParams())
		restored, skipped, err := b.Restore(data)
		if err != nil {
			require.ErrorIs(t, err, scoring.ErrCorruptScores)
			require.Zero(t, restored+skipped)
			require.Zero(t, b.Len())
			return
		}
		require.GreaterOrEqual(t, restored, 0)
		require.GreaterOrEqual(t, skipped, 0)
		require.Equal(t, restored, b.Len())

		out, err := b.MarshalJSON()
		require.NoError(t, err)
		var saved struct {
			Peers []struct {
				Peer peer.ID `json:"peer"`
			} `json:"peers"`
		}
		require.NoError(t, json.Unmarshal(out, &saved))
		require.Len(t, saved.Peers, restored)
		for i := range 2 {
			if i > 0 {
				mock.Add(time.Hour)
			}
			for _, sp := range saved.Peers {
				s := b.Score(sp.Peer)
				require.False(t, math.IsNaN(s), "score of %s", sp.Peer)
				require.GreaterOrEqual(t, s, 0.0, "score of %s", sp.Peer)
				require.LessOrEqual(t, s, 1.0, "score of %s", sp.Peer)
			}
		}

		// What a restored book saves restores whole.
		c, _ := newMockBook(t, scoring.DefaultParams())
		again, skippedAgain, err := c.Restore(out)
		require.NoError(t, err)
		require.Equal(t, restored, again)
		require.Zero(t, skippedAgain)
	})
}
