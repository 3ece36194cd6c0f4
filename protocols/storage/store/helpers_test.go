package store

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOptions turn off the disk rule, which depends on the machine.
func testOptions() Options { return Options{MinFreeFraction: -1} }

func openTest(t testing.TB, opt Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opt)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// randomBytes is n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func putBytes(t testing.TB, s *Store, data []byte) cid.Cid {
	t.Helper()
	info, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), cid.Undef)
	require.NoError(t, err)
	return info.ID
}

// files lists the files under dir/sub, relative to dir/sub.
func files(t testing.TB, dir, sub string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, sub)
	require.NoError(t, filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return err
	}))
	return out
}

// requireState checks the store holds exactly the blobs of usage count
// and bytes, with their outboards, and no temp files.
func requireState(t testing.TB, s *Store, count int, size int64) {
	t.Helper()
	c, b := s.Usage()
	require.Equal(t, count, c, "blob count")
	require.Equal(t, size, b, "blob bytes")
	require.Len(t, files(t, s.Dir(), blobsDir), 2*count, "files in blobs/")
	require.Empty(t, files(t, s.Dir(), tmpDir), "files in tmp/")
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	require.Zero(t, s.usage.reserved, "bytes still reserved")
	require.Zero(t, s.usage.unwritten.Load(), "bytes still unwritten")
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// failReader fails the test if read.
type failReader struct{ t testing.TB }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("read when no read was expected")
	return 0, io.ErrUnexpectedEOF
}

// oneByteReader returns one byte per Read, to test short reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// sizes worth testing: empty, one byte, group boundaries, a chunk
// boundary inside a group, and trees of several levels.
var testSizes = []int{0, 1, 1023, 1024, 1025, GroupSize - 1, GroupSize, GroupSize + 1, 2 * GroupSize, 3*GroupSize + 100, 1<<20 + 1}

// requireBytes compares byte slices, nil equal to empty, without dumping
// megabytes on a mismatch.
func requireBytes(t testing.TB, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, len(want), len(got), msgAndArgs...)
	require.True(t, bytes.Equal(want, got), msgAndArgs...)
}
