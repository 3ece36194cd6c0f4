package store

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// spoolAll writes data through sp in group-sized grabs, then finishes.
func spoolAll(sp *spooler, data []byte) error {
	if err := spoolGroups(sp, data); err != nil {
		return err
	}
	return sp.finish()
}

// spoolGroups fills data into sp in group-sized grabs.
func spoolGroups(sp *spooler, data []byte) error {
	for len(data) > 0 {
		n := min(GroupSize, len(data))
		p, err := sp.grab(n)
		if err != nil {
			return err
		}
		copy(p, data[:n])
		data = data[n:]
	}
	return nil
}

// TestSpooler: the file gets every byte in order, the caller hears of each
// write, and a sync starts while it writes once syncStep bytes are written,
// not only at the end.
func TestSpooler(t *testing.T) {
	requireAIO(t)
	var y fileSyncer
	defer y.close()
	f := dirtyFile(t, t.TempDir(), 0)
	var told int64
	sp := newSpooler(f, &y, func(n int64) { told += n })
	data := randomBytes(3*syncStep+12345, 7)
	// The last buffer of the first syncStep bytes is written at the next
	// grab, and the sync starts then.
	require.NoError(t, spoolGroups(sp, data[:syncStep]))
	require.EqualValues(t, syncStep-ioBufSize, sp.written)
	require.Zero(t, sp.synced, "a sync before syncStep bytes")
	_, err := sp.grab(GroupSize)
	require.NoError(t, err)
	sp.unfill(GroupSize)
	require.EqualValues(t, syncStep, sp.written)
	require.EqualValues(t, syncStep, sp.synced, "no sync started at syncStep bytes")
	require.NotNil(t, sp.syncing)

	require.NoError(t, spoolGroups(sp, data[syncStep:]))
	require.NoError(t, sp.finish())
	require.Nil(t, sp.syncing, "finish waits for the sync")
	sp.stop()
	sp.stop()
	require.EqualValues(t, len(data), told)
	require.Positive(t, y.viaAIO.Load(), "the syncs did not go through AIO")
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

// TestSpoolerFinishStartsNoSync: the last buffer, written by finish, starts
// no background sync even when it completes a syncStep: the caller syncs the
// file next.
func TestSpoolerFinishStartsNoSync(t *testing.T) {
	var y fileSyncer
	defer y.close()
	f := dirtyFile(t, t.TempDir(), 0)
	sp := newSpooler(f, &y, nil)
	defer sp.stop()
	require.NoError(t, spoolAll(sp, randomBytes(syncStep, 8)))
	require.EqualValues(t, syncStep, sp.written)
	require.Zero(t, sp.synced)
	require.Zero(t, y.viaAIO.Load())
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
