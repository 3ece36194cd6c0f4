package scoring_test

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"peernode/scoring"
)

// TestMain fails the package if a test leaves a goroutine running: the
// Pinger's Close and every mocknet host must stop what they started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testProto = "/test/1.0.0"

// testIDs returns n distinct, valid peer IDs (sha2-256 multihashes of seed
// and index), sorted, so that runs repeat and ID order is known.
func testIDs(n int, seed uint64) []peer.ID {
	ids := make([]peer.ID, n)
	var buf [16]byte
	for i := range ids {
		binary.BigEndian.PutUint64(buf[:8], seed)
		binary.BigEndian.PutUint64(buf[8:], uint64(i))
		sum := sha256.Sum256(buf[:])
		ids[i] = peer.ID(append([]byte{0x12, 0x20}, sum[:]...))
	}
	slices.Sort(ids)
	return ids
}

// newMockBook returns a Book on a mock clock (which starts at Unix 0).
func newMockBook(tb testing.TB, p scoring.Params) (*scoring.Book, *clock.Mock) {
	tb.Helper()
	mock := clock.NewMock()
	b, err := scoring.NewBook(p, mock)
	require.NoError(tb, err)
	return b, mock
}

// component returns the named component of e.
func component(tb testing.TB, e scoring.Explanation, name string) scoring.Component {
	tb.Helper()
	for _, c := range e.Components {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("explanation of %s has no %q component: %+v", e.Peer, name, e.Components)
	return scoring.Component{}
}

// decide advances the mock clock by the local-fault window, so every
// failure reported so far is decided on the next read.
func decide(b *scoring.Book, mock *clock.Mock) {
	mock.Add(b.Params().LocalFaultWindow)
}

func randDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// historyOpts selects the events randomHistory may generate.
type historyOpts struct {
	// transient adds the state MarshalJSON does not save (GossipSub
	// score, relayed path) and disconnects.
	transient bool
}

// randomHistory drives b through steps random events on ids, advancing
// the mock clock now and then, including inputs the book must ignore.
func randomHistory(b *scoring.Book, mock *clock.Mock, ids []peer.ID, rng *rand.Rand, steps int, o historyOpts) {
	for range steps {
		p := ids[rng.IntN(len(ids))]
		switch k := rng.IntN(12); {
		case k == 0:
			b.ObserveRTT(p, randDur(rng, -time.Millisecond, 2*time.Second))
		case k <= 4:
			b.ReportRequest(p, testProto, randDur(rng, 0, time.Second), scoring.Success)
		case k <= 6:
			b.ReportRequest(p, testProto, 0, scoring.Outcome(1+rng.IntN(2)))
		case k == 7:
			b.Announced(p, mock.Now().Add(-randDur(rng, -10*time.Second, 5*time.Minute)))
		case k == 8:
			amounts := []float64{rng.Float64() * 3, -1, 0, math.NaN(), math.Inf(1)}
			b.Penalize(p, amounts[rng.IntN(len(amounts))])
		case k == 9:
			b.Connected(p)
		case k == 10 && o.transient:
			scores := []float64{rng.Float64()*300 - 200, math.NaN(), math.Inf(-1)}
			b.SetGossipScore(p, scores[rng.IntN(len(scores))])
		case k == 11 && o.transient:
			if rng.IntN(2) == 0 {
				b.SetRelayed(p, rng.IntN(2) == 0)
			} else {
				b.Disconnected(p)
			}
		}
		if rng.IntN(8) == 0 { // not more often: each Add sleeps a millisecond
			mock.Add(randDur(rng, 0, 2*time.Minute))
		}
	}
}
