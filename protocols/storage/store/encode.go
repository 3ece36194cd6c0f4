package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/ipfs/go-cid"
)

// blobFiles are the open files of a stored blob.
type blobFiles struct {
	id         cid.Cid
	data, tree *os.File
	size       int64
}

// openBlob opens blob id's data and outboard and checks that they agree on
// the size.
func (s *Store) openBlob(id cid.Cid) (*blobFiles, error) {
	path, err := s.path(id)
	if err != nil {
		return nil, err
	}
	b := &blobFiles{id: id}
	if b.data, err = os.Open(path); err != nil {
		return nil, notFound(id, err)
	}
	fi, err := b.data.Stat()
	if err == nil {
		b.size = fi.Size()
		b.tree, err = os.Open(path + outboardExt)
	}
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: %s has %w", ErrNotFound, id, errNoOutboard)
	}
	var h [headerSize]byte
	if err == nil {
		if _, err = b.tree.ReadAt(h[:], 0); err == io.EOF {
			err = fmt.Errorf("%w: the outboard of %s is shorter than its header", ErrBadData, id)
		}
	}
	if err == nil && binary.LittleEndian.Uint64(h[:]) != uint64(b.size) {
		err = fmt.Errorf("%w: the outboard of %s is for %d bytes, the data has %d", ErrBadData, id, binary.LittleEndian.Uint64(h[:]), b.size)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *blobFiles) close() {
	for _, f := range []*os.File{b.data, b.tree} {
		if f != nil {
			_ = f.Close()
		}
	}
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ioBufSize) }}

func getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

// WriteEncoded writes to w the slice encoding of bytes [off, off+length) of
// blob id: the length header, then in pre-order the parents and chunk
// groups that overlap the range (none for an empty range). It reads the
// data file and the outboard through bounded buffers. A range outside the
// blob is ErrBadRange; an unknown blob ErrNotFound. It writes exactly
// EncodedLen(size, off, length) bytes.
func (s *Store) WriteEncoded(w io.Writer, id cid.Cid, off, length int64) error {
	b, err := s.openBlob(id)
	if err != nil {
		return err
	}
	defer b.close()
	if !validRange(b.size, off, length) {
		return fmt.Errorf("%w: %d+%d of blob %s of %d bytes", ErrBadRange, off, length, id, b.size)
	}
	out := &encBuf{w: w, buf: ioBufPool.Get().(*ioBuf)[:0]}
	defer out.release()
	copy(out.take(headerSize), header(b.size))
	if length > 0 {
		data := &groupSlots{f: b.data, off: off / GroupSize * GroupSize}
		out.before = data.fill
		x := &extractor{out: out, data: data, tree: newTreeReader(b.tree), lo: uint64(off), hi: uint64(off + length)}
		if err := x.walk(0, uint64(b.size), 0); err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
	}
	if err := out.flush(); err != nil {
		return fmt.Errorf("encode %s: %w", id, err)
	}
	return nil
}

// extractor copies the nodes of a stored blob that overlap [lo, hi) to out
// in pre-order.
type extractor struct {
	out    *encBuf
	data   *groupSlots // the blob's groups from the first that overlaps
	tree   *treeReader
	lo, hi uint64
}

// walk copies the subtree over [pos, pos+n), whose first parent has
// pre-order index idx.
func (x *extractor) walk(pos, n, idx uint64) error {
	if !overlaps(pos, n, x.lo, x.hi) {
		return nil
	}
	if n <= GroupSize {
		x.data.add(x.out.take(int(n))) // read when the buffer is full
		return x.out.err
	}
	if err := x.tree.readAt(x.out.take(parentSize), parentOffset(idx)); err != nil {
		return x.out.fail(err)
	}
	mid := leftSize(n)
	if err := x.walk(pos, mid, idx+1); err != nil {
		return err
	}
	return x.walk(pos+mid, n-mid, idx+1+parentCount(mid))
}

// encBuf gathers an encoding into ioBufSize writes.
type encBuf struct {
	w   io.Writer
	buf []byte
	err error // the first error
	// before, if set, completes the buffer before it is written: it
	// reads the chunk groups whose places take gave out.
	before func() error
}

// take returns the next n <= ioBufSize bytes of output to fill. After a
// write error it returns scratch space; err tells.
func (e *encBuf) take(n int) []byte {
	if len(e.buf)+n > cap(e.buf) {
		_ = e.flush()
	}
	i := len(e.buf)
	e.buf = e.buf[:i+n]
	return e.buf[i : i+n]
}

func (e *encBuf) flush() error {
	if e.err == nil && e.before != nil {
		e.err = e.before()
	}
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
	return e.err
}

func (e *encBuf) fail(err error) error {
	if e.err != nil {
		return e.err
	}
	return err
}

func (e *encBuf) release() {
	ioBufPool.Put((*ioBuf)(e.buf[:ioBufSize]))
	e.buf = nil
}
