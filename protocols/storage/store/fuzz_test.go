package store

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"lukechampine.com/blake3/bao"
)

// fuzzBlob is the blob every fuzzed encoding claims to be: four groups, the
// last one short, so the tree has two levels of parents.
var fuzzBlob = randomBytes(3*GroupSize+100, 42)

// sliceOf is bao's slice encoding of [off, off+length) of data.
func sliceOf(t testing.TB, data []byte, off, length int64) []byte {
	if length == 0 {
		return header(int64(len(data)))
	}
	combined, _ := bao.EncodeBuf(data, Group, false)
	var b bytes.Buffer
	if err := bao.ExtractSlice(&b, bytes.NewReader(combined), nil, Group, uint64(off), uint64(length)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func FuzzDecodeVerified(f *testing.F) {
	size := int64(len(fuzzBlob))
	g := int64(GroupSize)
	for _, r := range [][2]int64{{0, size}, {0, 0}, {size, 0}, {g - 1, 2}, {5, 2*g + 7}, {size - 1, 1}, {3 * g, 100}} {
		enc := sliceOf(f, fuzzBlob, r[0], r[1])
		f.Add(enc, r[0], r[1], int8(0))
		bad := bytes.Clone(enc)
		bad[len(bad)/2] ^= 1
		f.Add(bad, r[0], r[1], int8(0))
		f.Add(enc[:len(enc)*2/3], r[0], r[1], int8(0))
		f.Add(enc, r[0], r[1], int8(1))
		f.Add(enc, r[0], r[1], int8(-1))
	}
	f.Add([]byte{}, int64(0), int64(1), int8(0))
	f.Add([]byte("garbage garbage garbage"), int64(-1), int64(1<<62), int8(3))
	id := Sum(fuzzBlob)
	f.Fuzz(func(t *testing.T, enc []byte, off, length int64, sizeDelta int8) {
		// The caller may have been told a wrong size too.
		claimed := size + int64(sizeDelta)
		src := &countingReader{r: bytes.NewReader(enc)}
		var got bytes.Buffer
		err := DecodeVerified(&got, src, id, claimed, off, length)
		if !validRange(claimed, off, length) {
			if !errors.Is(err, ErrBadRange) || got.Len() > 0 || src.n > 0 {
				t.Fatalf("range %d+%d of %d: err %v, wrote %d, read %d", off, length, claimed, err, got.Len(), src.n)
			}
			return
		}
		if max := EncodedLen(claimed, off, length); src.n > max {
			t.Fatalf("read %d bytes, the encoding has %d", src.n, max)
		}
		// Whatever was written is the start of the true range.
		end := min(off+length, size)
		if got.Len() > 0 && (off > size || int64(got.Len()) > end-off || !bytes.Equal(got.Bytes(), fuzzBlob[off:off+int64(got.Len())])) {
			t.Fatalf("range %d+%d of %d: wrote %d bytes that are not the blob's", off, length, claimed, got.Len())
		}
		if err == nil && int64(got.Len()) != length {
			t.Fatalf("range %d+%d: succeeded with %d bytes", off, length, got.Len())
		}
		if err != nil && !errors.Is(err, ErrBadData) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil && sizeDelta == 0 && int64(len(enc)) == EncodedLen(size, off, length) && bytes.Equal(enc, sliceOf(t, fuzzBlob, off, length)) {
			t.Fatalf("range %d+%d: the true encoding failed: %v", off, length, err)
		}
	})
}
