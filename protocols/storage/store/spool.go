package store

import (
	"fmt"
	"os"
	"sync"
)

const (
	// ioBufSize is the size of file reads and writes: large enough that
	// syscalls cost little next to hashing, small enough to stay in cache.
	ioBufSize = 256 << 10
	// syncStep is how much a spooler writes between the syncs it starts
	// in the background. Waiting for the disk only at the end would add
	// the time to write the whole blob to every put; syncing as it goes
	// overlaps that with the transfer, and bounds the dirty pages.
	syncStep = 8 << 20
)

type ioBuf = [ioBufSize]byte

var ioBufPool = sync.Pool{New: func() any { return new(ioBuf) }}

// spooler writes a file sequentially through one buffer, which the caller
// fills through grab. Each full buffer is written from the caller's
// goroutine; only the syncs run in the background.
//
// It used to hand buffers to a writer goroutine of its own, so that the
// hashing of one buffer overlapped the write of the last. Measured on two
// cores that bought nothing for a local put (the disk bounds it) and cost
// a 256 MiB network put 1 to 4 % more CPU: every buffer was two more
// goroutine hand-offs, on cores the transfer itself keeps busy.
type spooler struct {
	f      *os.File
	syncer *fileSyncer
	buf    *ioBuf
	cur    []byte
	// wrote, if set, is told of bytes written.
	wrote func(n int64)
	// written counts the bytes written, synced those the last sync
	// started covers; syncing is that sync's outcome, nil when none runs.
	written, synced int64
	syncing         <-chan error
	err             error // the first write or sync error
}

func newSpooler(f *os.File, syncer *fileSyncer, wrote func(int64)) *spooler {
	buf := ioBufPool.Get().(*ioBuf)
	return &spooler{f: f, syncer: syncer, buf: buf, cur: buf[:0], wrote: wrote}
}

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

// flush writes the buffer, then starts a sync if one is due.
func (s *spooler) flush() error {
	if err := s.write(); err != nil {
		return err
	}
	return s.syncDue()
}

// write writes the buffer.
func (s *spooler) write() error {
	if s.err != nil {
		return s.err
	}
	if len(s.cur) == 0 {
		return nil
	}
	if _, err := s.f.Write(s.cur); err != nil {
		s.err = fmt.Errorf("writing the data: %w", err) // err names the file
		return s.err
	}
	if s.wrote != nil {
		s.wrote(int64(len(s.cur)))
	}
	s.written += int64(len(s.cur))
	s.cur = s.cur[:0]
	return nil
}

// syncDue starts a sync once syncStep more bytes are written than the
// last one covers, and that one has ended.
func (s *spooler) syncDue() error {
	if s.written-s.synced < syncStep {
		return nil
	}
	if s.syncing != nil {
		select {
		case err := <-s.syncing:
			if s.err = s.syncDone(err); s.err != nil {
				return s.err
			}
		default:
			return nil // still running: start the next after a later buffer
		}
	}
	s.syncing, s.synced = s.syncer.start(s.f), s.written
	return nil
}

// syncDone takes the outcome of a background sync. Linux reports a failed
// writeback once, so its error is kept for the put.
func (s *spooler) syncDone(err error) error {
	s.syncing = nil
	if err != nil {
		return fmt.Errorf("syncing %s: %w", s.f.Name(), err)
	}
	return nil
}

// finish writes the rest and waits for the background sync. It starts no
// sync of its own: the caller syncs the file next.
func (s *spooler) finish() error {
	_ = s.write() // a failed write is kept in s.err
	if s.syncing != nil {
		if serr := s.syncDone(<-s.syncing); s.err == nil {
			s.err = serr
		}
	}
	return s.err
}

// stop waits for a background sync and gives back the buffer. It may be
// called more than once, and after finish.
func (s *spooler) stop() {
	if s.syncing != nil {
		<-s.syncing
		s.syncing = nil
	}
	if s.buf != nil {
		ioBufPool.Put(s.buf)
		s.buf, s.cur = nil, nil
	}
}
