package store

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireAIO skips when the kernel refuses an AIO context (a sandbox
// without io_setup); everywhere else the syncer must use it.
func requireAIO(t *testing.T) {
	t.Helper()
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, aioSlots, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		t.Skipf("no AIO here (%v): syncs go through fsync", e)
	}
	unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
}

// pipe is a file with no fsync: syncing it fails with EINVAL.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func dirtyFile(t *testing.T, dir string, n int) *os.File {
	t.Helper()
	f, err := os.CreateTemp(dir, "sync-*")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	_, err = f.Write(randomBytes(n, uint64(n)))
	require.NoError(t, err)
	return f
}

func TestFileSyncer(t *testing.T) {
	requireAIO(t)
	dir := t.TempDir()
	var y fileSyncer
	defer y.close()

	f := dirtyFile(t, dir, 1<<20)
	require.NoError(t, y.sync(f))
	require.EqualValues(t, 1, y.viaAIO.Load(), "the sync did not go through AIO")

	// More syncs at once than the context has slots: those over the
	// limit fall back to fsync, and every one succeeds.
	var wg sync.WaitGroup
	errs := make([]error, 3*aioSlots)
	for i := range errs {
		g := dirtyFile(t, dir, 64<<10+i)
		wg.Go(func() { errs[i] = y.sync(g) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "sync %d", i)
	}
	require.Greater(t, y.viaAIO.Load(), int64(1))
	y.mu.Lock()
	require.Empty(t, y.waiting, "requests left behind")
	y.mu.Unlock()
}

// TestFileSyncerStart: a sync started in the background goes through AIO
// when it can; otherwise fsync runs on a goroutine. Either way its result
// is fsync's.
func TestFileSyncerStart(t *testing.T) {
	requireAIO(t)
	var y fileSyncer
	f := dirtyFile(t, t.TempDir(), 1<<20)
	require.NoError(t, <-y.start(f))
	require.EqualValues(t, 1, y.viaAIO.Load(), "the sync did not go through AIO")

	_, w := pipe(t)
	require.ErrorIs(t, <-y.start(w), syscall.EINVAL, "a pipe has no fsync")

	closed := dirtyFile(t, t.TempDir(), 10)
	require.NoError(t, closed.Close())
	require.ErrorIs(t, <-y.start(closed), os.ErrClosed)

	y.close()
	require.NoError(t, <-y.start(f), "after close the sync runs fsync")
	require.ErrorIs(t, <-y.start(w), syscall.EINVAL)
	require.EqualValues(t, 1, y.viaAIO.Load())
}

func TestFileSyncerErrors(t *testing.T) {
	requireAIO(t)
	var y fileSyncer
	defer y.close()

	// A pipe has no fsync: the error is fsync's own.
	_, w := pipe(t)
	want := w.Sync()
	require.ErrorIs(t, want, syscall.EINVAL)
	require.Equal(t, want, y.sync(w))

	f := dirtyFile(t, t.TempDir(), 10)
	require.NoError(t, f.Close())
	require.ErrorIs(t, y.sync(f), os.ErrClosed)
}

func TestFileSyncerAfterClose(t *testing.T) {
	var y fileSyncer
	f := dirtyFile(t, t.TempDir(), 4096)
	require.NoError(t, y.sync(f))
	y.close()
	y.close()
	before := y.viaAIO.Load()
	require.NoError(t, y.sync(f), "a sync after close goes through fsync")
	require.Equal(t, before, y.viaAIO.Load())

	var never fileSyncer // closed before any sync: never sets up
	never.close()
	require.NoError(t, never.sync(f))
	require.False(t, never.ok)
}

// TestStoreClosesSyncer: a store that wrote frees its AIO context and
// reaper at Close (goleak in TestMain checks the goroutine), and a put
// racing Close still syncs.
func TestStoreClosesSyncer(t *testing.T) {
	requireAIO(t)
	s, err := Open(filepath.Join(t.TempDir(), "s"), testOptions())
	require.NoError(t, err)
	putBytes(t, s, randomBytes(100<<10, 3))
	require.True(t, s.syncer.ok)
	require.Positive(t, s.syncer.viaAIO.Load())
	require.NoError(t, s.Close())
	f := dirtyFile(t, t.TempDir(), 10)
	require.NoError(t, s.syncer.sync(f))
}
