package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

// value reads a counter (whose Write cannot fail).
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestMetricsResultOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("get: %w", store.ErrNotFound), "not_found"},
		{&RemoteError{Code: pb.Code_QUOTA, Message: "full"}, "quota"},
		{store.ErrBadData, "bad_data"},
		{store.ErrQuota, "quota"},
		{store.ErrTooLarge, "too_large"},
		{ErrBusy, "busy"},
		{ErrRefused, "refused"},
		{ErrMalformed, "malformed"},
		{fmt.Errorf("%w: x", ErrStalled), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("disk on fire"), "error"},
	} {
		require.Equal(t, c.want, resultOf(c.err), "%v", c.err)
	}
}

// A put, a get, a stat of a missing blob and a has move the operation
// counters of both sides, and the byte counters by exactly the encoded
// size, twice (the put's upload and the get's download).
func TestMetricsCountOperationsAndBytes(t *testing.T) {
	p := newPair(t, testConfig(), store.Options{})
	ctx := context.Background()
	ops := func(op, side, result string) float64 {
		return value(operationsTotal.WithLabelValues(op, side, result))
	}
	timed := func(op, side string) float64 {
		var m dto.Metric
		_ = durationSeconds.WithLabelValues(op, side).(prometheus.Histogram).Write(&m)
		return float64(m.GetHistogram().GetSampleCount())
	}
	type snap struct {
		putC, putS, getC, getS, statC, statS, hasC, hasS, sent, recv float64
		// successful requests timed: put, get and has on each side
		tPutC, tPutS, tGetC, tGetS, tHasC, tHasS, tStatC float64
	}
	take := func() snap {
		return snap{
			ops("put", "client", "ok"), ops("put", "served", "ok"), ops("get", "client", "ok"), ops("get", "served", "ok"),
			ops("stat", "client", "not_found"), ops("stat", "served", "not_found"), ops("has", "client", "ok"), ops("has", "served", "ok"),
			value(bytesSent), value(bytesReceived),
			timed("put", "client"), timed("put", "served"), timed("get", "client"), timed("get", "served"),
			timed("has", "client"), timed("has", "served"), timed("stat", "client"),
		}
	}
	before := take()

	data := randomBytes(t, 3*store.GroupSize+5)
	id := putLocal(t, p.local, data)
	_, err := p.client.Put(ctx, p.server.ID(), p.local, id)
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = p.client.Get(ctx, p.server.ID(), id, 0, -1, &got)
	require.NoError(t, err)
	missing := putLocal(t, p.local, randomBytes(t, 10))
	_, _, err = p.client.Stat(ctx, p.server.ID(), missing)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = p.client.Has(ctx, p.server.ID(), nil)
	require.NoError(t, err)

	// The served side counts after it answered: the client may see the
	// answer first.
	require.Eventually(t, func() bool {
		a := take()
		return a.putS == before.putS+1 && a.getS == before.getS+1 && a.statS == before.statS+1 && a.hasS == before.hasS+1
	}, 5*time.Second, time.Millisecond)
	after := take()
	require.Equal(t, before.putC+1, after.putC)
	require.Equal(t, before.getC+1, after.getC)
	require.Equal(t, before.statC+1, after.statC)
	require.Equal(t, before.hasC+1, after.hasC)
	enc := float64(store.EncodedLen(int64(len(data)), 0, int64(len(data))))
	require.Equal(t, before.sent+2*enc, after.sent, "put upload and get download")
	require.Equal(t, before.recv+2*enc, after.recv)
	// Every success is timed once per side; a failure (the stat) is not.
	require.Equal(t, before.tPutC+1, after.tPutC)
	require.Equal(t, before.tPutS+1, after.tPutS)
	require.Equal(t, before.tGetC+1, after.tGetC)
	require.Equal(t, before.tGetS+1, after.tGetS)
	require.Equal(t, before.tHasC+1, after.tHasC)
	require.Equal(t, before.tHasS+1, after.tHasS)
	require.Equal(t, before.tStatC, after.tStatC)
}
