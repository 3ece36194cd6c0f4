package store

import (
	"fmt"
	"io"
	"os"
)

// treeWindow is how much of an outboard file treeWriter and treeReader
// hold in memory: the parents of 16 MiB of data.
const treeWindow = 64 << 10

// treeWriter writes an outboard's parents at their pre-order places while
// the tree is hashed bottom-up. Hashing finishes the parents in post-order;
// every place before the furthest one written so far then holds a finished
// node, except those of the unfinished ancestors. So a window that only
// moves forward catches nearly every write; an ancestor finishing behind
// the window is written on its own, over the stale bytes the window left
// in its place.
type treeWriter struct {
	f    *os.File
	base int64  // file offset of buf[0]
	buf  []byte // cap treeWindow
}

func newTreeWriter(f *os.File, size int64) (*treeWriter, error) {
	return newTreeWriterSize(f, size, treeWindow)
}

// newTreeWriterSize has a window of window >= parentSize bytes.
func newTreeWriterSize(f *os.File, size int64, window int) (*treeWriter, error) {
	w := &treeWriter{f: f, buf: make([]byte, 0, window)}
	return w, w.put(0, header(size))
}

// put writes p at file offset off.
func (w *treeWriter) put(off int64, p []byte) error {
	if off < w.base {
		if _, err := w.f.WriteAt(p, off); err != nil {
			return fmt.Errorf("writing outboard %s: %w", w.f.Name(), err)
		}
		return nil
	}
	if off-w.base+int64(len(p)) > int64(cap(w.buf)) {
		if err := w.flush(); err != nil {
			return err
		}
		w.base = off
	}
	i := int(off - w.base)
	if end := i + len(p); end > len(w.buf) {
		w.buf = w.buf[:end]
	}
	copy(w.buf[i:], p)
	return nil
}

// flush writes the window out and empties it.
func (w *treeWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, w.base); err != nil {
		return fmt.Errorf("writing outboard %s: %w", w.f.Name(), err)
	}
	w.buf = w.buf[:0]
	return nil
}

// treeReader reads parents from an outboard at increasing offsets (a
// pre-order walk that skips subtrees), a window at a time.
type treeReader struct {
	f    *os.File
	base int64 // file offset of buf[0]
	buf  []byte
}

func newTreeReader(f *os.File) *treeReader {
	return &treeReader{f: f, buf: make([]byte, 0, treeWindow)}
}

func (r *treeReader) readAt(p []byte, off int64) error {
	if off < r.base || off+int64(len(p)) > r.base+int64(len(r.buf)) {
		n, err := r.f.ReadAt(r.buf[:cap(r.buf)], off)
		r.base, r.buf = off, r.buf[:n]
		if n < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading outboard %s at %d: %w", r.f.Name(), off, err)
		}
	}
	copy(p, r.buf[off-r.base:])
	return nil
}
