package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

func TestPutRoundTrips(t *testing.T) {
	s := openTest(t, testOptions())
	ctx := context.Background()
	var total int64
	var ids []string
	for i, n := range append(testSizes, 5<<20+3) {
		data := randomBytes(n, uint64(i))
		want := Sum(data)
		info, err := s.Put(ctx, bytes.NewReader(data), int64(n), want)
		require.NoError(t, err, "%d bytes", n)
		require.True(t, info.ID.Equals(want))
		require.EqualValues(t, n, info.Size)
		require.False(t, info.Stored.IsZero())
		total += int64(n)
		ids = append(ids, want.String())

		st, err := s.Stat(want)
		require.NoError(t, err)
		require.Equal(t, info, st)
		require.True(t, s.Has(want))
		require.NoError(t, s.Verify(want))
		for _, r := range testRanges(int64(n)) {
			rc, err := s.OpenRange(want, r[0], r[1])
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			requireBytes(t, data[r[0]:r[0]+r[1]], got, "%d bytes, range %v", n, r)
		}
		_, err = s.OpenRange(want, int64(n), 1)
		require.ErrorIs(t, err, ErrBadRange)
	}
	requireState(t, s, len(ids), total)

	list, err := s.List()
	require.NoError(t, err)
	var listed []string
	for _, info := range list {
		listed = append(listed, info.ID.String())
	}
	sort.Strings(ids)
	require.Equal(t, ids, listed)

	for _, info := range list {
		require.NoError(t, s.Delete(info.ID))
		require.False(t, s.Has(info.ID))
		_, err := s.Stat(info.ID)
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, s.Delete(info.ID), ErrNotFound)
	}
	requireState(t, s, 0, 0)
	list, err = s.List()
	require.NoError(t, err)
	require.Empty(t, list)
}

// Unknown sizes and short reads give the same blob, whether the group
// hashes stay in memory or go to a temp file.
func TestPutUnknownSize(t *testing.T) {
	s := openTest(t, testOptions())
	defer func(mem int) { cvSpoolMem = mem }(cvSpoolMem)
	cvSpoolMem = 5 * 32
	for i, n := range []int{0, 1, GroupSize, GroupSize + 1, 3*GroupSize + 1, 5 * GroupSize, 5*GroupSize + 1, 40*GroupSize - 1} {
		data := randomBytes(n, uint64(i))
		var r io.Reader = bytes.NewReader(data)
		if n < 4*GroupSize {
			r = oneByteReader{r}
		}
		info, err := s.Put(context.Background(), r, -1, Sum(data))
		require.NoError(t, err, "%d bytes", n)
		require.EqualValues(t, n, info.Size)
		require.NoError(t, s.Verify(info.ID))
		require.NoError(t, s.Delete(info.ID))
	}
	requireState(t, s, 0, 0)
}

func TestPutExisting(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(3*GroupSize, 1)
	id := putBytes(t, s, data)
	// Again, unannounced: read, found stored, one copy kept.
	info, err := s.Put(context.Background(), bytes.NewReader(data), -1, cid.Undef)
	require.NoError(t, err)
	require.True(t, info.ID.Equals(id))
	// Again, by ID: not even read.
	info, err = s.Put(context.Background(), failReader{t}, int64(len(data)), id)
	require.NoError(t, err)
	require.True(t, info.ID.Equals(id))
	_, err = s.Put(context.Background(), failReader{t}, 5, id)
	require.ErrorIs(t, err, ErrBadData)
	requireState(t, s, 1, int64(len(data)))
}

func TestPutRefusals(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(10*GroupSize, 1)
	size := int64(len(data))
	for _, tc := range []struct {
		name    string
		opt     Options
		size    int64
		stream  []byte
		want    cid.Cid
		err     error
		maxRead int64
	}{
		{"wrong want", testOptions(), size, data, Sum([]byte("other")), ErrBadData, size + 1},
		{"wrong want, unknown size", testOptions(), -1, data, Sum([]byte("other")), ErrBadData, size + 1},
		{"stream shorter than declared", testOptions(), size + 1, data, cid.Undef, ErrBadData, size + 1},
		{"stream longer than declared", testOptions(), size - 1, data, cid.Undef, ErrBadData, size},
		{"declared size over the limit", Options{MaxBlobSize: size - 1, MinFreeFraction: -1}, size, data, cid.Undef, ErrTooLarge, 0},
		{"stream over the limit", Options{MaxBlobSize: 3*GroupSize + 5, MinFreeFraction: -1}, -1, data, cid.Undef, ErrTooLarge, 3*GroupSize + 6},
		{"declared size over the quota", Options{Quota: size - 1, MinFreeFraction: -1}, size, data, cid.Undef, ErrQuota, 0},
		{"stream over the quota", Options{Quota: 3*GroupSize + 5, MinFreeFraction: -1}, -1, data, cid.Undef, ErrQuota, 4 * GroupSize},
		{"disk nearly full", Options{MinFreeFraction: 1 - 1e-12}, size, data, cid.Undef, ErrQuota, 0},
		{"disk nearly full, unknown size", Options{MinFreeFraction: 1 - 1e-12}, -1, data, cid.Undef, ErrQuota, GroupSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, tc.opt)
			// Something stored already, which must stay counted.
			small := []byte("already here")
			_, err := s.Put(ctx, bytes.NewReader(small), int64(len(small)), cid.Undef)
			if tc.opt.MinFreeFraction > 0 {
				require.ErrorIs(t, err, ErrQuota)
				small = nil
			} else {
				require.NoError(t, err)
			}
			r := &countingReader{r: bytes.NewReader(tc.stream)}
			_, err = s.Put(ctx, r, tc.size, tc.want)
			require.ErrorIs(t, err, tc.err)
			require.LessOrEqual(t, r.n, tc.maxRead, "bytes read")
			if small == nil {
				requireState(t, s, 0, 0)
			} else {
				requireState(t, s, 1, int64(len(small)))
			}
		})
	}
}

func TestPutCancelled(t *testing.T) {
	s := openTest(t, testOptions())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := randomBytes(GroupSize, 1)
	_, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), cid.Undef)
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Put(ctx, bytes.NewReader(data), -1, cid.Undef)
	require.ErrorIs(t, err, context.Canceled)
	requireState(t, s, 0, 0)
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	require.NoError(t, err)
	data := randomBytes(GroupSize+1, 1)
	id := putBytes(t, s, data)
	// A second open of a directory in use fails.
	_, err = Open(dir, testOptions())
	require.Error(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, err = s.Stat(id)
	require.ErrorIs(t, err, ErrClosed)

	// What a crash leaves: a temp file, an outboard whose blob never
	// landed, plus a file the store does not know.
	require.NoError(t, os.WriteFile(filepath.Join(dir, tmpDir, "blob-123"), []byte("partial"), 0o600))
	orphan := Sum([]byte("orphan")).String()
	shard := filepath.Join(dir, blobsDir, shardOf(orphan))
	require.NoError(t, os.MkdirAll(shard, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(shard, orphan+outboardExt), header(6), 0o600))
	stray := filepath.Join(dir, blobsDir, shardOf(id.String()), "notes.txt")
	require.NoError(t, os.WriteFile(stray, []byte("x"), 0o600))

	s, err = Open(dir, testOptions())
	require.NoError(t, err)
	defer s.Close()
	require.Empty(t, files(t, dir, tmpDir))
	require.NoFileExists(t, filepath.Join(shard, orphan+outboardExt))
	require.FileExists(t, stray)
	count, bytes := s.Usage()
	require.Equal(t, 1, count)
	require.EqualValues(t, len(data), bytes)
	require.NoError(t, s.Verify(id))
	list, err := s.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, opt := range []Options{{MaxBlobSize: -1}, {Quota: -1}, {MinFreeFraction: 1}, {MaxBlobSize: 1 << 62}} {
		_, err := Open(t.TempDir(), opt)
		require.Error(t, err, "%+v", opt)
	}
}

func TestLayout(t *testing.T) {
	s := openTest(t, testOptions())
	id := putBytes(t, s, []byte("layout"))
	name := id.String()
	for _, p := range []string{name, name + outboardExt} {
		fi, err := os.Stat(filepath.Join(s.Dir(), blobsDir, name[shardAt:shardAt+2], p))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	for _, d := range []string{blobsDir, tmpDir, filepath.Join(blobsDir, name[shardAt:shardAt+2])} {
		fi, err := os.Stat(filepath.Join(s.Dir(), d))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(5*GroupSize+3, 1)
	id := putBytes(t, s, data)
	path := filepath.Join(s.Dir(), blobsDir, shardOf(id.String()), id.String())
	for _, tc := range []struct {
		file string
		off  int64
	}{{path, 3*GroupSize + 1}, {path + outboardExt, headerSize + 3*parentSize + 5}, {path + outboardExt, 0}} {
		f, err := os.OpenFile(tc.file, os.O_RDWR, 0)
		require.NoError(t, err)
		b := []byte{0}
		_, err = f.ReadAt(b, tc.off)
		require.NoError(t, err)
		flip := func() {
			b[0] ^= 0x40
			_, err = f.WriteAt(b, tc.off)
			require.NoError(t, err)
		}
		flip()
		require.ErrorIs(t, s.Verify(id), ErrBadData, "%s at %d", filepath.Base(tc.file), tc.off)
		flip()
		require.NoError(t, s.Verify(id))
		require.NoError(t, f.Close())
	}
	require.NoError(t, os.Truncate(path, int64(len(data)-1)))
	require.ErrorIs(t, s.Verify(id), ErrBadData)
}

// Deleting a blob someone is reading leaves the reader its bytes.
func TestDeleteWhileReading(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(3*GroupSize, 1)
	id := putBytes(t, s, data)
	rc, err := s.OpenRange(id, 0, int64(len(data)))
	require.NoError(t, err)
	require.NoError(t, s.Delete(id))
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	requireBytes(t, data, got)
	require.NoError(t, rc.Close())
	requireState(t, s, 0, 0)
}

func TestConcurrentPuts(t *testing.T) {
	s := openTest(t, Options{MinFreeFraction: -1, Quota: 1 << 30})
	shared := randomBytes(3*GroupSize+9, 99)
	const workers = 8
	errs := make(chan error, 2*workers)
	want := map[string]int64{Sum(shared).String(): int64(len(shared))}
	datas := make([][]byte, workers)
	for i := range datas {
		datas[i] = randomBytes(GroupSize*(i+1)+i, uint64(i))
		want[Sum(datas[i]).String()] = int64(len(datas[i]))
	}
	for i := range workers {
		go func() {
			size := int64(len(shared))
			if i%2 == 0 {
				size = -1
			}
			_, err := s.Put(context.Background(), bytes.NewReader(shared), size, cid.Undef)
			errs <- err
		}()
		go func() {
			_, err := s.Put(context.Background(), bytes.NewReader(datas[i]), int64(len(datas[i])), cid.Undef)
			errs <- err
		}()
	}
	for range 2 * workers {
		require.NoError(t, <-errs)
	}
	var total int64
	for _, n := range want {
		total += n
	}
	requireState(t, s, len(want), total)
	list, err := s.List()
	require.NoError(t, err)
	for _, info := range list {
		require.Equal(t, want[info.ID.String()], info.Size)
		require.NoError(t, s.Verify(info.ID))
	}
}

// Readers and deletes run while puts of the same blob come and go.
func TestConcurrentPutReadDelete(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(4*GroupSize, 5)
	id := Sum(data)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			_, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), id)
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		var enc bytes.Buffer
		if err := s.WriteEncoded(&enc, id, 0, int64(len(data))); err == nil {
			var got bytes.Buffer
			require.NoError(t, DecodeVerified(&got, &enc, id, int64(len(data)), 0, int64(len(data))))
		} else {
			require.ErrorIs(t, err, ErrNotFound)
		}
		if err := s.Delete(id); err != nil {
			require.ErrorIs(t, err, ErrNotFound)
		}
	}
	<-done
	_ = s.Delete(id)
	requireState(t, s, 0, 0)
}

func TestErrorsNameTheirCause(t *testing.T) {
	_, err := ParseID(cid.NewCidV1(cid.DagProtobuf, Sum(nil).Hash()).String())
	require.True(t, strings.Contains(err.Error(), "codec"), err.Error())
}
