package store

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// spoolAll writes data through sp in group-sized grabs.
func spoolAll(sp *spooler, data []byte) error {
	for len(data) > 0 {
		n := min(GroupSize, len(data))
		p, err := sp.grab(n)
		if err != nil {
			return err
		}
		copy(p, data[:n])
		data = data[n:]
	}
	return sp.finish()
}

// TestSpooler: the file gets every byte in order, the caller hears of each
// write, and syncs run while it writes, not only at the end.
func TestSpooler(t *testing.T) {
	requireAIO(t)
	var y fileSyncer
	defer y.close()
	f := dirtyFile(t, t.TempDir(), 0)
	var told int64
	sp := newSpooler(f, &y, func(n int64) { told += n })
	data := randomBytes(3*syncStep+12345, 7)
	require.NoError(t, spoolAll(sp, data))
	sp.stop()
	sp.stop()
	require.EqualValues(t, len(data), told)
	require.GreaterOrEqual(t, y.viaAIO.Load(), int64(2), "background syncs")
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

// TestSpoolerSyncError: a background sync's failure is the put's error.
func TestSpoolerSyncError(t *testing.T) {
	var y fileSyncer
	defer y.close()
	r, w := pipe(t)
	go io.Copy(io.Discard, r)
	sp := newSpooler(w, &y, nil)
	defer sp.stop()
	err := spoolAll(sp, make([]byte, syncStep+GroupSize))
	require.ErrorIs(t, err, syscall.EINVAL, "a pipe has no fsync")
	require.ErrorContains(t, err, "syncing")
}

// TestSpoolerWriteError: a failed write stops the spooler with the write's
// error.
func TestSpoolerWriteError(t *testing.T) {
	var y fileSyncer
	defer y.close()
	f := dirtyFile(t, t.TempDir(), 0)
	ro, err := os.Open(f.Name())
	require.NoError(t, err)
	defer ro.Close()
	sp := newSpooler(ro, &y, nil)
	defer sp.stop()
	err = spoolAll(sp, make([]byte, 2*ioBufSize))
	require.ErrorIs(t, err, syscall.EBADF)
	require.ErrorContains(t, err, "writing")
	_, err = sp.grab(GroupSize)
	require.Error(t, err, "the spooler stays failed")
}
