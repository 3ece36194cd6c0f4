package store

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// encodeWhole is the combined encoding of data, as a sender's store writes
// it.
func encodeWhole(t testing.TB, data []byte) (cid.Cid, []byte) {
	t.Helper()
	src := openTest(t, testOptions())
	id := putBytes(t, src, data)
	var enc bytes.Buffer
	require.NoError(t, src.WriteEncoded(&enc, id, 0, int64(len(data))))
	return id, enc.Bytes()
}

func TestReceiveRoundTrips(t *testing.T) {
	s := openTest(t, testOptions())
	var total int64
	for i, n := range testSizes {
		data := randomBytes(n, uint64(i))
		id, enc := encodeWhole(t, data)
		r := &countingReader{r: io.MultiReader(bytes.NewReader(enc), bytes.NewReader([]byte("next message")))}
		info, err := s.Receive(context.Background(), id, int64(n), r)
		require.NoError(t, err, "%d bytes", n)
		require.EqualValues(t, len(enc), r.n, "reads exactly the encoding")
		require.EqualValues(t, n, info.Size)
		require.NoError(t, s.Verify(id))
		var again bytes.Buffer
		require.NoError(t, s.WriteEncoded(&again, id, 0, int64(n)))
		requireBytes(t, enc, again.Bytes())
		total += int64(n)
	}
	requireState(t, s, len(testSizes), total)
	// A blob already stored is not read again.
	require.Equal(t, GroupSize, testSizes[6])
	data := randomBytes(GroupSize, 6)
	info, err := s.Receive(context.Background(), Sum(data), GroupSize, failReader{t})
	require.NoError(t, err)
	require.EqualValues(t, GroupSize, info.Size)
	_, err = s.Receive(context.Background(), Sum(data), GroupSize+1, failReader{t})
	require.ErrorIs(t, err, ErrBadData)
}

// A sender lying in group k is caught before the encoding of group k+1
// ends, and leaves nothing behind.
func TestReceiveCatchesABadGroupEarly(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(40*GroupSize+5, 1)
	size := int64(len(data))
	id, enc := encodeWhole(t, data)
	for _, k := range []int64{1, 2, 17, 39, 40} {
		bad := bytes.Clone(enc)
		bad[EncodedLen(size, 0, k*GroupSize+1)-1] ^= 0x80 // the first byte of group k
		r := &countingReader{r: bytes.NewReader(bad)}
		_, err := s.Receive(context.Background(), id, size, r)
		require.ErrorIs(t, err, ErrBadData, "group %d", k)
		require.LessOrEqual(t, r.n, EncodedLen(size, 0, min((k+2)*GroupSize, size)), "group %d: read too far", k)
		requireState(t, s, 0, 0)
	}
}

func TestReceiveRefusals(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(6*GroupSize+1, 2)
	size := int64(len(data))
	id, enc := encodeWhole(t, data)
	for _, tc := range []struct {
		name    string
		opt     Options
		id      cid.Cid
		size    int64
		enc     []byte
		err     error
		maxRead int64
	}{
		{"truncated", testOptions(), id, size, enc[:len(enc)-1], io.ErrUnexpectedEOF, int64(len(enc))},
		{"truncated header", testOptions(), id, size, enc[:3], io.ErrUnexpectedEOF, 3},
		{"smaller size declared", testOptions(), id, size - 1, enc, ErrBadData, headerSize},
		{"larger size declared", testOptions(), id, size + GroupSize, enc, ErrBadData, headerSize},
		{"negative size", testOptions(), id, -1, enc, ErrBadData, 0},
		{"another blob's ID", testOptions(), Sum([]byte("other")), size, enc, ErrBadData, int64(len(enc))},
		{"empty, but not the empty ID", testOptions(), id, 0, header(0), ErrBadData, 0},
		{"not a blob ID", testOptions(), cid.Undef, size, enc, ErrBadID, 0},
		{"over the limit", Options{MaxBlobSize: size - 1, MinFreeFraction: -1}, id, size, enc, ErrTooLarge, 0},
		{"over the quota", Options{Quota: size - 1, MinFreeFraction: -1}, id, size, enc, ErrQuota, 0},
		{"disk nearly full", Options{MinFreeFraction: 1 - 1e-12}, id, size, enc, ErrQuota, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, tc.opt)
			r := &countingReader{r: bytes.NewReader(tc.enc)}
			_, err := s.Receive(ctx, tc.id, tc.size, r)
			require.ErrorIs(t, err, tc.err)
			require.LessOrEqual(t, r.n, tc.maxRead, "bytes read")
			requireState(t, s, 0, 0)
		})
	}
}

func TestReceiveCancelled(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(3*GroupSize, 3)
	id, enc := encodeWhole(t, data)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Receive(ctx, id, int64(len(data)), bytes.NewReader(enc))
	require.ErrorIs(t, err, context.Canceled)
	requireState(t, s, 0, 0)
}

func TestConcurrentReceives(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(9*GroupSize, 4)
	id, enc := encodeWhole(t, data)
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			_, err := s.Receive(context.Background(), id, int64(len(data)), bytes.NewReader(enc))
			errs <- err
		}()
	}
	for range 6 {
		require.NoError(t, <-errs)
	}
	requireState(t, s, 1, int64(len(data)))
	require.NoError(t, s.Verify(id))
}
