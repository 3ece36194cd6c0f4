package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestReadaheadDeliversEverything(t *testing.T) {
	data := randomBytes(t, 3*readaheadBufSize+12345)
	for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data[:70000])), iotest.HalfReader(bytes.NewReader(data))} {
		ra := newReadahead(r)
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(ra, 100)))
		require.NoError(t, err)
		rest, err := io.ReadAll(ra)
		require.NoError(t, err)
		got = append(got, rest...)
		require.True(t, bytes.HasPrefix(data, got) && len(got) > 0)
		ra.Close()
	}
}

func TestReadaheadPassesTheError(t *testing.T) {
	boom := errors.New("boom")
	ra := newReadahead(io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(boom)))
	got, err := io.ReadAll(ra)
	require.ErrorIs(t, err, boom)
	require.Len(t, got, 1000)
	ra.Close()
}

// Close of a read-ahead whose reader already failed, before the caller
// read anything, returns.
func TestReadaheadCloseEarly(t *testing.T) {
	pr, pw := io.Pipe()
	ra := newReadahead(pr)
	_, _ = pw.Write(make([]byte, 10))
	pw.CloseWithError(errors.New("reset"))
	ra.Close()
}
