package store

import (
	"encoding/binary"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// The bao tree of a blob. Leaves are chunk groups of GroupSize bytes (the
// last one may be shorter; an empty blob has one empty group). A node over
// n > GroupSize bytes has a left child over the largest power of two below
// n and a right child over the rest, as in the BLAKE3 tree, so the root's
// hash is the BLAKE3 hash of the blob.
//
// Encodings list nodes in pre-order: an 8-byte little-endian length header,
// then for a parent 64 bytes (the hashes of its children), for a group its
// bytes. The outboard file holds the header and the parents only; the
// combined encoding interleaves the groups; a slice encoding keeps only
// the nodes that overlap a byte range.

const (
	// Group is the bao chunk group exponent: groups of 2^Group chunks.
	Group = 4
	// GroupSize is the number of bytes in a chunk group (16 KiB).
	GroupSize = 1024 << Group

	headerSize  = 8
	parentSize  = 64
	groupChunks = GroupSize / guts.ChunkSize

	// maxTreeSize bounds the blob sizes the tree code accepts, so that
	// encoded lengths stay far from overflowing an int64.
	maxTreeSize = 1 << 60
)

// A group fills exactly the buffer that guts hashes 16 chunks at a time from.
var _ [GroupSize]byte = [guts.MaxSIMD * guts.ChunkSize]byte{}

// cv is a chaining value: the hash of a subtree as eight words.
type cv = [8]uint32

// groupCount is the number of leaves of the tree over n bytes.
func groupCount(n uint64) uint64 {
	if n == 0 {
		return 1
	}
	return (n-1)/GroupSize + 1
}

// parentCount is the number of parent nodes of the tree over n bytes.
func parentCount(n uint64) uint64 { return groupCount(n) - 1 }

// leftSize is the size of the left child of a node over n > GroupSize
// bytes: the largest power of two below n.
func leftSize(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// outboardSize is the size of the outboard file of a blob of size bytes.
func outboardSize(size int64) int64 {
	return headerSize + parentSize*int64(parentCount(uint64(size)))
}

// parentOffset is where the parent with pre-order index i sits in the
// outboard.
func parentOffset(i uint64) int64 { return int64(headerSize + parentSize*i) }

// hashGroup hashes the group p (at most GroupSize bytes) with index i.
// root is set for the group of a blob of at most one group.
func hashGroup(p []byte, i uint64, root bool) cv {
	var n guts.Node
	if cap(p) >= GroupSize {
		// The SIMD code reads the whole buffer but only uses len(p) bytes.
		n = guts.CompressBuffer((*[GroupSize]byte)(p[:GroupSize]), len(p), &guts.IV, i*groupChunks, 0)
	} else {
		var buf [GroupSize]byte
		copy(buf[:], p)
		n = guts.CompressBuffer(&buf, len(p), &guts.IV, i*groupChunks, 0)
	}
	if root {
		n.Flags |= guts.FlagRoot
	}
	return guts.ChainingValue(n)
}

// hashParent hashes the parent of children l and r.
func hashParent(l, r cv, root bool) cv {
	var flags uint32
	if root {
		flags = guts.FlagRoot
	}
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
}

func getCV(b []byte) cv {
	var c cv
	for i := range c {
		c[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return c
}

func putCV(b []byte, c *cv) {
	for i, w := range c {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

// putParent writes the 64-byte node of a parent with children l and r.
func putParent(b []byte, l, r *cv) {
	putCV(b[:32], l)
	putCV(b[32:parentSize], r)
}

// validRange reports whether [off, off+length) lies within a blob of size
// bytes that the tree code handles.
func validRange(size, off, length int64) bool {
	return size >= 0 && size <= maxTreeSize && off >= 0 && length >= 0 && off <= size && length <= size-off
}

// overlaps reports whether the node over [pos, pos+n) holds bytes of the
// range [lo, hi). An empty range overlaps nothing.
func overlaps(pos, n, lo, hi uint64) bool {
	return lo < hi && pos < hi && lo < pos+n
}

// EncodedLen is the exact number of bytes of the slice encoding of
// [off, off+length) of a blob of blobSize bytes, as WriteEncoded writes it
// and DecodeVerified reads it: the header, then the parents and groups that
// overlap the range. An empty range is the header alone; the whole blob is
// its combined encoding. It is -1 for a range outside the blob.
func EncodedLen(blobSize, off, length int64) int64 {
	if !validRange(blobSize, off, length) {
		return -1
	}
	return headerSize + int64(sliceLen(0, uint64(blobSize), uint64(off), uint64(off+length)))
}

// sliceLen is the encoded length of the nodes of the subtree over
// [pos, pos+n) that overlap [lo, hi).
func sliceLen(pos, n, lo, hi uint64) uint64 {
	switch {
	case !overlaps(pos, n, lo, hi):
		return 0
	case n <= GroupSize:
		return n
	case lo <= pos && pos+n <= hi:
		return n + parentSize*parentCount(n)
	}
	l := leftSize(n)
	return parentSize + sliceLen(pos, l, lo, hi) + sliceLen(pos+l, n-l, lo, hi)
}
