package store

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

const (
	// ioBufSize is the size of file reads and writes: large enough that
	// syscalls cost little next to hashing, small enough to stay in cache.
	ioBufSize = 256 << 10
	// spoolBuffers bounds a spooler's memory: one buffer being filled,
	// the others queued for or in the write.
	spoolBuffers = 3
	// syncStep is how much a spooler writes between the syncs it runs in
	// the background. Waiting for the disk only at the end would add the
	// time to write the whole blob to every put; syncing as it goes
	// overlaps that with the transfer, and bounds the dirty pages.
	syncStep = 8 << 20
)

type ioBuf = [ioBufSize]byte

var ioBufPool = sync.Pool{New: func() any { return new(ioBuf) }}

// spooler writes a file sequentially from a goroutine of its own, so that
// hashing the next buffer overlaps writing the last. The caller fills the
// space grab returns; finish or stop ends the goroutine.
type spooler struct {
	f     *os.File
	sync  func(*os.File) error
	cur   []byte
	queue chan []byte
	free  chan []byte
	done  chan struct{}
	// wrote, if set, is told (from the writer goroutine) of bytes written.
	wrote func(n int64)
	err   atomic.Pointer[error] // the first write error
}

func newSpooler(f *os.File, syncFile func(*os.File) error, wrote func(int64)) *spooler {
	s := &spooler{
		f:     f,
		sync:  syncFile,
		queue: make(chan []byte, spoolBuffers),
		free:  make(chan []byte, spoolBuffers),
		done:  make(chan struct{}),
		wrote: wrote,
	}
	s.cur = ioBufPool.Get().(*ioBuf)[:0]
	for range spoolBuffers - 1 {
		s.free <- ioBufPool.Get().(*ioBuf)[:0]
	}
	go s.run()
	return s
}

// run writes queued buffers until the queue is closed. After an error it
// only hands buffers back.
func (s *spooler) run() {
	defer close(s.done)
	kick, synced := make(chan struct{}, 1), make(chan struct{})
	go s.syncer(kick, synced)
	defer func() {
		close(kick)
		<-synced
	}()
	var written, kicked int64
	for b := range s.queue {
		if s.err.Load() == nil {
			if _, err := s.f.Write(b); err != nil {
				s.fail(fmt.Errorf("writing %s: %w", s.f.Name(), err))
			} else if s.wrote != nil {
				s.wrote(int64(len(b)))
			}
			written += int64(len(b))
		}
		s.free <- b[:0]
		if written-kicked >= syncStep {
			select {
			case kick <- struct{}{}:
				kicked = written
			default: // a sync is running; kick again after the next buffer
			}
		}
	}
}

// syncer syncs the file each time it is kicked, until kick is closed, so
// that the disk takes the data while more comes and the final sync has
// little left to do.
func (s *spooler) syncer(kick <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for range kick {
		if err := s.sync(s.f); err != nil {
			// Linux reports a failed writeback once: keep it for the put.
			s.fail(fmt.Errorf("syncing %s: %w", s.f.Name(), err))
		}
	}
}

func (s *spooler) fail(err error) { s.err.CompareAndSwap(nil, &err) }

// grab returns the next n <= ioBufSize bytes of the file for the caller to
// fill. Grabs of whole groups keep every group aligned in the buffer, so
// it can be hashed in place.
func (s *spooler) grab(n int) ([]byte, error) {
	if len(s.cur)+n > cap(s.cur) {
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	i := len(s.cur)
	s.cur = s.cur[:i+n]
	return s.cur[i : i+n], nil
}

// unfill gives back the last n grabbed bytes, which were not filled.
func (s *spooler) unfill(n int) { s.cur = s.cur[:len(s.cur)-n] }

// flush queues the current buffer and takes a free one, waiting for the
// writer when it is two buffers behind.
func (s *spooler) flush() error {
	if err := s.err.Load(); err != nil {
		return *err
	}
	if len(s.cur) == 0 {
		return nil
	}
	s.queue <- s.cur
	s.cur = <-s.free
	return nil
}

// finish writes the rest and waits for the writer.
func (s *spooler) finish() error {
	err := s.flush()
	s.stop()
	if werr := s.err.Load(); werr != nil {
		return *werr
	}
	return err
}

// stop ends the writer (after the writes it has queued) and gives back the
// buffers. It may be called more than once.
func (s *spooler) stop() {
	if s.queue == nil {
		return
	}
	close(s.queue)
	<-s.done
	s.queue = nil
	release := func(b []byte) { ioBufPool.Put((*ioBuf)(b[:ioBufSize])) }
	release(s.cur)
	s.cur = nil
	for range spoolBuffers - 1 {
		release(<-s.free)
	}
}
