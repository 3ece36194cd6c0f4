package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

func blobPath(s *Store, id cid.Cid) string {
	return filepath.Join(s.Dir(), blobsDir, shardOf(id.String()), id.String())
}

// flipByte inverts a bit of the byte at off in file.
func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

// requireServes checks blob id verifies and encodes into what decodes to
// data.
func requireServes(t *testing.T, s *Store, id cid.Cid, data []byte) {
	t.Helper()
	require.NoError(t, s.Verify(id))
	var enc, out bytes.Buffer
	require.NoError(t, s.WriteEncoded(&enc, id, 0, int64(len(data))))
	require.NoError(t, DecodeVerified(&out, &enc, id, int64(len(data)), 0, int64(len(data))))
	requireBytes(t, data, out.Bytes())
}

// Check finds a sound blob sound, rebuilds an outboard that is missing,
// truncated or altered from the data, and takes corrupt data out of the
// store without deleting it.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{0, 1, GroupSize + 1, 5*GroupSize + 3} {
		s := openTest(t, testOptions())
		data := randomBytes(size, uint64(size))
		id := putBytes(t, s, data)
		path := blobPath(s, id)

		res, err := s.Check(ctx, id)
		require.NoError(t, err)
		require.Equal(t, CheckOK, res.Status, "size %d", size)
		require.EqualValues(t, size, res.Size)
		require.Empty(t, res.Problem)

		damage := map[string]func(){
			"missing":   func() { require.NoError(t, os.Remove(path+outboardExt)) },
			"truncated": func() { require.NoError(t, os.Truncate(path+outboardExt, outboardSize(int64(size))-1)) },
			"header":    func() { flipByte(t, path+outboardExt, 0) },
			"emptied":   func() { require.NoError(t, os.Truncate(path+outboardExt, 0)) },
		}
		if size > GroupSize {
			damage["parent"] = func() { flipByte(t, path+outboardExt, outboardSize(int64(size))-5) }
		}
		for name, do := range damage {
			do()
			res, err := s.Check(ctx, id)
			require.NoError(t, err, "size %d, %s outboard", size, name)
			require.Equal(t, CheckRepaired, res.Status, "size %d, %s outboard", size, name)
			require.NotEmpty(t, res.Problem)
			requireServes(t, s, id, data)
			requireState(t, s, 1, int64(size))
		}
		if size == 0 {
			continue
		}

		flipByte(t, path, int64(size)-1)
		res, err = s.Check(ctx, id)
		require.NoError(t, err)
		require.Equal(t, CheckCorrupt, res.Status)
		require.Contains(t, res.Problem, "no longer hashes to its ID")
		_, err = s.Stat(id)
		require.ErrorIs(t, err, ErrNotFound)
		requireState(t, s, 0, 0)
		// The corrupt bytes are kept, all of them, out of the store.
		kept, err := os.ReadFile(res.MovedTo)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(s.Dir(), corruptDir), filepath.Dir(res.MovedTo))
		require.Len(t, kept, size)
		kept[size-1] ^= 0x40
		requireBytes(t, data, kept)

		_, err = s.Check(ctx, id)
		require.ErrorIs(t, err, ErrNotFound)
		// The blob can be stored again, and a second corruption is kept
		// beside the first.
		putBytes(t, s, data)
		flipByte(t, path, 0)
		res2, err := s.Check(ctx, id)
		require.NoError(t, err)
		require.Equal(t, CheckCorrupt, res2.Status)
		require.NotEqual(t, res.MovedTo, res2.MovedTo)
		require.FileExists(t, res.MovedTo)
		require.FileExists(t, res2.MovedTo)
	}
}

func TestCheckCanceled(t *testing.T) {
	s := openTest(t, testOptions())
	id := putBytes(t, s, randomBytes(3*GroupSize, 3))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Check(ctx, id)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, os.Remove(blobPath(s, id)+outboardExt))
	_, err = s.Check(ctx, id)
	require.ErrorIs(t, err, context.Canceled)
	require.NoFileExists(t, blobPath(s, id)+outboardExt)
	require.Empty(t, files(t, s.Dir(), tmpDir))
	res, err := s.Check(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, CheckRepaired, res.Status)

	_, err = s.Check(context.Background(), Sum([]byte("never stored")))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Check(context.Background(), cid.NewCidV1(cid.DagProtobuf, id.Hash()))
	require.ErrorIs(t, err, ErrBadID)
}

// Open rebuilds outboards that are missing or of the wrong size, and moves
// out blobs whose data no longer matches, so that every blob it counts can
// be served.
func TestOpenRepairs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	require.NoError(t, err)
	var data [4][]byte
	var ids [4]cid.Cid
	for i := range data {
		data[i] = randomBytes(2*GroupSize+i, uint64(10+i))
		ids[i] = putBytes(t, s, data[i])
	}
	require.NoError(t, os.Remove(blobPath(s, ids[0])+outboardExt))
	require.NoError(t, os.Truncate(blobPath(s, ids[1])+outboardExt, headerSize+parentSize))
	require.NoError(t, os.Remove(blobPath(s, ids[2])+outboardExt))
	flipByte(t, blobPath(s, ids[2]), GroupSize)
	require.NoError(t, s.Close())

	s, err = Open(dir, testOptions())
	require.NoError(t, err)
	defer s.Close()
	requireState(t, s, 3, int64(len(data[0])+len(data[1])+len(data[3])))
	for _, i := range []int{0, 1, 3} {
		requireServes(t, s, ids[i], data[i])
	}
	_, err = s.Stat(ids[2])
	require.ErrorIs(t, err, ErrNotFound)
	kept := files(t, dir, corruptDir)
	require.Len(t, kept, 1)
	b, err := os.ReadFile(filepath.Join(dir, corruptDir, kept[0]))
	require.NoError(t, err)
	require.Len(t, b, len(data[2]))
}
