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

func TestWritebehind(t *testing.T) {
	data := randomBytes(t, 2*readaheadBufSize+777)
	var out bytes.Buffer
	wb := newWritebehind(&out)
	for p := data; len(p) > 0; {
		n := min(len(p), 1000+len(p)%5000)
		k, err := wb.Write(p[:n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		p = p[n:]
	}
	require.NoError(t, wb.Close())
	require.True(t, bytes.Equal(data, out.Bytes()))

	boom := errors.New("boom")
	wb = newWritebehind(errWriter{boom})
	_, _ = wb.Write(data)
	require.ErrorIs(t, wb.Close(), boom)
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
