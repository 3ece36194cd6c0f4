package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3/bao"
)

// testRanges are ranges of a blob of size bytes: whole, empty, inside one
// group, across group boundaries, the last byte.
func testRanges(size int64) [][2]int64 {
	g := int64(GroupSize)
	rs := [][2]int64{{0, size}, {0, 0}, {size, 0}, {size / 2, 0}}
	for _, r := range [][2]int64{
		{0, 1}, {size - 1, 1}, {1, size - 2}, {0, g}, {g - 1, 2}, {g, g}, {g + 1, g - 2}, {5, 2*g + 7},
		{g, 0}, {3 * g, 100}, {3*g + 99, 1}, {2*g - 1, 1}, {2 * g, 1}, {size / 3, size / 3}, {size - g - 1, g + 1},
	} {
		if validRange(size, r[0], r[1]) {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestEncodeDecodeRanges(t *testing.T) {
	s := openTest(t, testOptions())
	for i, n := range append(testSizes, 5<<20+3) {
		data := randomBytes(n, uint64(i))
		id := putBytes(t, s, data)
		size := int64(n)
		var combined []byte
		var root [32]byte
		if n <= 1<<20+1 {
			combined, root = bao.EncodeBuf(data, Group, false)
		}
		ranges := testRanges(size)
		if n > 1<<20+1 {
			ranges = [][2]int64{{0, size}, {size - 1, 1}, {GroupSize - 1, 2}, {size / 3, size / 3}}
		}
		var enc, got bytes.Buffer
		enc.Grow(int(EncodedLen(size, 0, size)))
		got.Grow(n)
		for _, r := range ranges {
			off, length := r[0], r[1]
			enc.Reset()
			require.NoError(t, s.WriteEncoded(&enc, id, off, length), "size %d range %v", n, r)
			require.EqualValues(t, EncodedLen(size, off, length), enc.Len(), "size %d range %v", n, r)
			if length > 0 && n <= 1<<20+1 {
				// The same slice as the bao library's, which decodes it.
				var want bytes.Buffer
				require.NoError(t, bao.ExtractSlice(&want, bytes.NewReader(combined), nil, Group, uint64(off), uint64(length)))
				require.True(t, bytes.Equal(want.Bytes(), enc.Bytes()), "size %d range %v: not bao's slice", n, r)
				got, ok := bao.VerifySlice(enc.Bytes(), Group, uint64(off), uint64(length), root)
				require.True(t, ok)
				requireBytes(t, data[off:off+length], got)
			}
			// Trailing bytes stay unread.
			src := &countingReader{r: io.MultiReader(bytes.NewReader(enc.Bytes()), bytes.NewReader(make([]byte, 100)))}
			got.Reset()
			require.NoError(t, DecodeVerified(&got, src, id, size, off, length), "size %d range %v", n, r)
			requireBytes(t, data[off:off+length], got.Bytes(), "size %d range %v", n, r)
			require.EqualValues(t, enc.Len(), src.n)
		}
		if n == 1<<20+1 {
			// Short reads change nothing.
			enc.Reset()
			got.Reset()
			require.NoError(t, s.WriteEncoded(&enc, id, 0, size))
			require.NoError(t, DecodeVerified(&got, oneByteReader{&enc}, id, size, 0, size))
			requireBytes(t, data, got.Bytes())
		}
	}
}

func TestEncodeRangeErrors(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(3*GroupSize, 1)
	id := putBytes(t, s, data)
	size := int64(len(data))
	for _, r := range [][2]int64{{-1, 1}, {0, -1}, {size + 1, 0}, {size, 1}, {1, size}} {
		require.ErrorIs(t, s.WriteEncoded(io.Discard, id, r[0], r[1]), ErrBadRange, "%v", r)
		require.ErrorIs(t, DecodeVerified(io.Discard, bytes.NewReader(nil), id, size, r[0], r[1]), ErrBadRange, "%v", r)
	}
	require.ErrorIs(t, DecodeVerified(io.Discard, bytes.NewReader(nil), id, -1, 0, 0), ErrBadRange)
	require.ErrorIs(t, s.WriteEncoded(io.Discard, Sum([]byte("missing")), 0, 0), ErrNotFound)
	require.ErrorIs(t, s.WriteEncoded(io.Discard, cid.Undef, 0, 0), ErrBadID)
	require.ErrorIs(t, DecodeVerified(io.Discard, bytes.NewReader(nil), cid.Undef, 0, 0, 0), ErrBadID)
}

// A corrupt group stops decoding at that group: everything before it is
// written, nothing of it.
func TestDecodeStopsAtTheBadGroup(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(20*GroupSize+77, 2)
	id := putBytes(t, s, data)
	size := int64(len(data))
	var enc bytes.Buffer
	require.NoError(t, s.WriteEncoded(&enc, id, 0, size))
	for _, k := range []int64{0, 1, 7, 19, 20} {
		bad := bytes.Clone(enc.Bytes())
		// Groups start after the header and the parents before them.
		at := EncodedLen(size, 0, k*GroupSize+1) - 1
		bad[at] ^= 1
		var got bytes.Buffer
		err := DecodeVerified(&got, bytes.NewReader(bad), id, size, 0, size)
		require.ErrorIs(t, err, ErrBadData, "group %d", k)
		requireBytes(t, data[:k*GroupSize], got.Bytes(), "group %d", k)
	}
	// A bad parent node.
	bad := bytes.Clone(enc.Bytes())
	bad[headerSize+70] ^= 1
	var got bytes.Buffer
	require.ErrorIs(t, DecodeVerified(&got, bytes.NewReader(bad), id, size, 0, size), ErrBadData)
	require.Empty(t, got.Bytes())
	// Another blob's ID.
	require.ErrorIs(t, DecodeVerified(io.Discard, bytes.NewReader(enc.Bytes()), Sum([]byte("other")), size, 0, size), ErrBadData)
}

func TestDecodeBadHeaderAndTruncation(t *testing.T) {
	s := openTest(t, testOptions())
	data := randomBytes(3*GroupSize, 3)
	id := putBytes(t, s, data)
	size := int64(len(data))
	var enc bytes.Buffer
	require.NoError(t, s.WriteEncoded(&enc, id, 0, size))
	// The encoding says another size.
	err := DecodeVerified(io.Discard, bytes.NewReader(enc.Bytes()), id, size-1, 0, 1)
	require.ErrorIs(t, err, ErrBadData)
	for _, cut := range []int{0, 5, headerSize, headerSize + 10, enc.Len() - 1} {
		var got bytes.Buffer
		err := DecodeVerified(&got, bytes.NewReader(enc.Bytes()[:cut]), id, size, 0, size)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", cut)
		require.False(t, errors.Is(err, ErrBadData))
		requireBytes(t, data[:got.Len()], got.Bytes())
	}
	// An empty blob is only the empty blob's ID.
	require.NoError(t, DecodeVerified(io.Discard, bytes.NewReader(header(0)), Sum(nil), 0, 0, 0))
	require.ErrorIs(t, DecodeVerified(io.Discard, bytes.NewReader(header(0)), id, 0, 0, 0), ErrBadData)
}

// readSlots scatters a file's bytes over slots of any sizes, and reports
// io.EOF when the file ends before the last slot is full.
func TestReadSlots(t *testing.T) {
	data := randomBytes(3*GroupSize+17, 9)
	f, err := os.CreateTemp(t.TempDir(), "slots")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(data)
	require.NoError(t, err)

	buf := make([]byte, len(data)+100)
	var slots [][]byte
	for i, n := 0, 0; n < len(data)-5; i++ {
		k := min(1+i*977%GroupSize, len(data)-5-n)
		slots = append(slots, buf[n+i:n+i+k]) // gaps of i bytes between slots
		n += k
	}
	require.NoError(t, readSlots(f, slots, 5))
	var got []byte
	for _, s := range slots {
		got = append(got, s...)
	}
	requireBytes(t, data[5:], got)
	require.NoError(t, readSlots(f, nil, 0))

	err = readSlots(f, [][]byte{make([]byte, 10), make([]byte, 10)}, int64(len(data)-15))
	require.ErrorIs(t, err, io.EOF, "the file ends inside the second slot")
	g := &groupSlots{f: f, off: int64(len(data))}
	g.add(make([]byte, 1))
	require.ErrorIs(t, g.fill(), io.ErrUnexpectedEOF)
}
