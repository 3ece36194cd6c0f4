package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"
)

func TestTreeShape(t *testing.T) {
	require.EqualValues(t, 1, groupCount(0))
	require.EqualValues(t, 1, groupCount(GroupSize))
	require.EqualValues(t, 2, groupCount(GroupSize+1))
	require.EqualValues(t, GroupSize, leftSize(GroupSize+1))
	require.EqualValues(t, 2*GroupSize, leftSize(3*GroupSize))
	require.EqualValues(t, 2*GroupSize, leftSize(4*GroupSize))
	require.EqualValues(t, 4*GroupSize, leftSize(4*GroupSize+1))
	for _, n := range []int{0, 1, GroupSize, GroupSize + 1, 5*GroupSize - 3, 1 << 30, 1<<40 + 5} {
		require.EqualValues(t, bao.EncodedSize(n, Group, true), outboardSize(int64(n)), "outboard of %d", n)
		require.EqualValues(t, bao.EncodedSize(n, Group, false), EncodedLen(int64(n), 0, int64(n)), "encoding of %d", n)
	}
}

func TestHashGroupIsBLAKE3(t *testing.T) {
	for _, n := range []int{0, 1, 64, 65, 1024, 1025, 2048, 5000, GroupSize} {
		data := randomBytes(n, uint64(n))
		want := blake3.Sum256(data)
		h := hashGroup(data, 0, true)
		var got [32]byte
		putCV(got[:], &h)
		require.Equal(t, want, got, "%d bytes", n)
		// A short slice is hashed from a copy; one with room in place.
		spare := make([]byte, GroupSize)
		copy(spare, data)
		require.Equal(t, h, hashGroup(spare[:n], 0, true))
	}
}

func TestEncodedLenRejects(t *testing.T) {
	for _, r := range [][3]int64{{-1, 0, 0}, {10, -1, 1}, {10, 0, -1}, {10, 11, 0}, {10, 5, 6}, {10, 1, 1<<63 - 1}, {1 << 62, 0, 1}} {
		require.EqualValues(t, -1, EncodedLen(r[0], r[1], r[2]), "%v", r)
	}
}

// The outboard a put writes is the bao outboard, whichever way the size
// came, and whatever the window the tree writer uses.
func TestOutboardMatchesBao(t *testing.T) {
	s := openTest(t, testOptions())
	for i, n := range append(testSizes, 5<<20+3) {
		data := randomBytes(n, uint64(i))
		want, root := bao.EncodeBuf(data, Group, true)
		for _, size := range []int64{int64(n), -1} {
			info, err := s.Put(context.Background(), bytes.NewReader(data), size, cid.Undef)
			require.NoError(t, err)
			require.Equal(t, IDFromRoot(root), info.ID)
			got, err := os.ReadFile(filepath.Join(s.Dir(), blobsDir, shardOf(info.ID.String()), info.ID.String()+outboardExt))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "outboard of %d bytes, size %d", n, size)
			require.NoError(t, s.Delete(info.ID))
		}
	}
}

func TestTreeWriterSmallWindow(t *testing.T) {
	for _, groups := range []int{2, 3, 7, 64, 100, 257} {
		data := randomBytes(groups*GroupSize-5, uint64(groups))
		want, root := bao.EncodeBuf(data, Group, true)
		for _, window := range []int{parentSize, 2 * parentSize, 5 * parentSize, 1 << 10} {
			f, err := os.Create(filepath.Join(t.TempDir(), "obao"))
			require.NoError(t, err)
			tw, err := newTreeWriterSize(f, int64(len(data)), window)
			require.NoError(t, err)
			b := &treeBuilder{out: tw, leaf: func(i uint64, n int, root bool) (cv, error) {
				return hashGroup(data[i*GroupSize:i*GroupSize+uint64(n)], i, root), nil
			}}
			h, err := b.build(0, uint64(len(data)), 0, true)
			require.NoError(t, err)
			require.NoError(t, tw.flush())
			var got [32]byte
			putCV(got[:], &h)
			require.Equal(t, root, got)
			require.NoError(t, f.Close())
			out, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, out), "%d groups, window %d", groups, window)
		}
	}
}
