package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
)

// decoder checks, in pre-order, the nodes of a tree that overlap [lo, hi)
// against the hash its parent (or the blob ID) gives for them, reading
// parents from tree and groups from data (the same reader for a combined
// or slice encoding). It reads exactly the bytes of those nodes, and stops
// at the first node that does not verify.
type decoder struct {
	tree, data io.Reader
	lo, hi     uint64
	// buffer returns where to read the next group, of n bytes.
	buffer func(n int) ([]byte, error)
	// verified, if set, gets each group (at pos) once it verified.
	verified func(pos uint64, p []byte) error
	// parent, if set, gets each parent node once it verified.
	parent func(node []byte) error
	node   [parentSize]byte
}

// walk verifies the subtree over [pos, pos+n) whose hash is want.
func (d *decoder) walk(want cv, pos, n uint64, root bool) error {
	if !overlaps(pos, n, d.lo, d.hi) {
		return nil
	}
	if n <= GroupSize {
		return d.group(want, pos, int(n), root)
	}
	if _, err := io.ReadFull(d.tree, d.node[:]); err != nil {
		return fmt.Errorf("reading the tree node over bytes %d-%d: %w", pos, pos+n, unexpectedEOF(err))
	}
	l, r := getCV(d.node[:32]), getCV(d.node[32:])
	if hashParent(l, r, root) != want {
		return fmt.Errorf("%w: tree node over bytes %d-%d", ErrBadData, pos, pos+n)
	}
	if d.parent != nil {
		if err := d.parent(d.node[:]); err != nil {
			return err
		}
	}
	mid := leftSize(n)
	if err := d.walk(l, pos, mid, false); err != nil {
		return err
	}
	return d.walk(r, pos+mid, n-mid, false)
}

func (d *decoder) group(want cv, pos uint64, n int, root bool) error {
	p, err := d.buffer(n)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(d.data, p); err != nil {
		return fmt.Errorf("reading chunk group %d: %w", pos/GroupSize, unexpectedEOF(err))
	}
	if hashGroup(p, pos/GroupSize, root) != want {
		return fmt.Errorf("%w: chunk group %d (bytes %d-%d)", ErrBadData, pos/GroupSize, pos, pos+uint64(n))
	}
	if d.verified != nil {
		return d.verified(pos, p)
	}
	return nil
}

// unexpectedEOF turns the end of an encoding that should go on into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readHeader reads an encoding's length header and checks it is size.
func readHeader(r io.Reader, size int64) error {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("reading the length header: %w", unexpectedEOF(err))
	}
	if got := binary.LittleEndian.Uint64(h[:]); got != uint64(size) {
		return fmt.Errorf("%w: encoding is for %d bytes, want %d", ErrBadData, got, size)
	}
	return nil
}

func header(size int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(size))
}

var groupPool = sync.Pool{New: func() any { return new([GroupSize]byte) }}

// DecodeVerified reads the slice encoding of [off, off+length) of blob id
// (blobSize bytes in all) from enc, as WriteEncoded writes it, and writes
// the bytes of the range to dst as they verify, chunk group by chunk group.
// At the first group or tree node that does not match id it stops with an
// error wrapping ErrBadData, having written nothing of that group. It reads
// at most EncodedLen(blobSize, off, length) bytes from enc. A range outside
// the blob is ErrBadRange; an encoding that ends early is
// io.ErrUnexpectedEOF. enc may come from anyone.
func DecodeVerified(dst io.Writer, enc io.Reader, id cid.Cid, blobSize, off, length int64) error {
	root, err := Root(id)
	if err != nil {
		return err
	}
	if !validRange(blobSize, off, length) {
		return fmt.Errorf("%w: %d+%d of a blob of %d bytes", ErrBadRange, off, length, blobSize)
	}
	if blobSize == 0 && root != emptyRoot {
		// No group of an empty range is checked: the ID alone must do.
		return fmt.Errorf("%w: %s is not the ID of the empty blob", ErrBadData, id)
	}
	enc = io.LimitReader(enc, EncodedLen(blobSize, off, length))
	if err := readHeader(enc, blobSize); err != nil {
		return err
	}
	buf := groupPool.Get().(*[GroupSize]byte)
	defer groupPool.Put(buf)
	lo, hi := uint64(off), uint64(off+length)
	d := &decoder{
		tree: enc, data: enc, lo: lo, hi: hi,
		buffer: func(n int) ([]byte, error) { return buf[:n], nil },
		verified: func(pos uint64, p []byte) error {
			p = p[max(lo, pos)-pos : min(hi, pos+uint64(len(p)))-pos]
			_, err := dst.Write(p)
			return err
		},
	}
	return d.walk(getCV(root[:]), 0, uint64(blobSize), true)
}
