package storage

import (
	"io"
	"sync"
)

// Read-ahead of a transfer's bytes: a goroutine reads the stream into a
// few large buffers while the caller verifies (hashes) and stores what
// arrived before, so the network and the hashing overlap instead of
// taking turns.
const (
	readaheadBufSize = 512 << 10
	readaheadBufs    = 4
	// readaheadMinFill is how much a buffer gathers before it is handed
	// over, unless the stream pauses: fewer, larger hand-overs.
	readaheadMinFill = 128 << 10
)

var readaheadPool = sync.Pool{New: func() any { return new([readaheadBufSize]byte) }}

// readahead reads r ahead of its caller. Close releases it; the goroutine
// ends when r fails or ends, which the caller ensures by closing or
// resetting the stream under r.
type readahead struct {
	full chan chunk
	free chan *[readaheadBufSize]byte
	stop chan struct{}
	done chan struct{}
	cur  chunk
	off  int
	err  error
}

type chunk struct {
	buf *[readaheadBufSize]byte
	n   int
	err error
}

func newReadahead(r io.Reader) *readahead {
	ra := &readahead{
		full: make(chan chunk, readaheadBufs),
		free: make(chan *[readaheadBufSize]byte, readaheadBufs),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readaheadBufs {
		ra.free <- readaheadPool.Get().(*[readaheadBufSize]byte)
	}
	go ra.fill(r)
	return ra
}

func (ra *readahead) fill(r io.Reader) {
	defer close(ra.done)
	for {
		var buf *[readaheadBufSize]byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := 0, error(nil)
		for n < readaheadMinFill && err == nil {
			var k int
			k, err = r.Read(buf[n:])
			n += k
		}
		select {
		case ra.full <- chunk{buf: buf, n: n, err: err}:
		case <-ra.stop:
			readaheadPool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for ra.off == ra.cur.n {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf
		}
		ra.cur, ra.off = <-ra.full, 0
		ra.err = ra.cur.err
	}
	n := copy(p, ra.cur.buf[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// Close stops the read-ahead and returns its buffers once the goroutine
// ended: the caller must have made the stream fail or end first, or call
// Close after the reader hit the end.
func (ra *readahead) Close() {
	close(ra.stop)
	<-ra.done
	if ra.cur.buf != nil {
		readaheadPool.Put(ra.cur.buf)
	}
	for {
		select {
		case buf := <-ra.free:
			readaheadPool.Put(buf)
		case c := <-ra.full:
			readaheadPool.Put(c.buf)
		default:
			return
		}
	}
}
