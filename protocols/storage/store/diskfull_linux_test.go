package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// smallDisk mounts a filesystem of size bytes (tmpfs) for the test, or
// skips where mounting is not allowed.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a small filesystem here (%v)", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestDiskFull: with the disk rule off, a put or a receive that runs out of
// disk (a 1 MiB tmpfs) is ErrQuota, says the disk is full, and leaves
// nothing behind: the blob stored before still verifies, and the space the
// failed writes took is free again.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, 1<<20)
	s, err := Open(filepath.Join(dir, "store"), testOptions())
	require.NoError(t, err)
	defer s.Close()
	small := randomBytes(100<<10, 1)
	id := putBytes(t, s, small)

	big := randomBytes(2<<20, 2)
	_, err = s.Put(context.Background(), bytes.NewReader(big), int64(len(big)), cid.Undef)
	require.ErrorIs(t, err, ErrQuota)
	require.ErrorIs(t, err, syscall.ENOSPC)
	requireState(t, s, 1, int64(len(small)))

	bigID, enc := encodeWhole(t, big)
	_, err = s.Receive(context.Background(), bigID, int64(len(big)), bytes.NewReader(enc))
	require.True(t, errors.Is(err, ErrQuota) && errors.Is(err, syscall.ENOSPC), "receive: %v", err)
	requireState(t, s, 1, int64(len(small)))

	require.NoError(t, s.Verify(id))
	putBytes(t, s, randomBytes(200<<10, 3)) // the space the failed writes took is free again
	requireState(t, s, 2, int64(len(small))+200<<10)
}
