package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
)

// growStep is how far ahead a write of unknown size reserves, so that it
// checks the quota and the disk about once per MiB.
const growStep = 1 << 20

// usage is the store's accounting. Writes in progress reserve their bytes
// against the quota before writing them, so that concurrent writes cannot
// pass it together.
type usage struct {
	mu       sync.Mutex
	count    int   // blobs stored
	bytes    int64 // their data bytes
	reserved int64 // bytes reserved by writes in progress

	// unwritten is what writes in progress have reserved but not yet
	// written: the disk's free space does not show it yet.
	unwritten atomic.Int64
}

// reservation is the quota taken by one write in progress. Only the
// writing call uses it, except written, which its file writer updates.
type reservation struct {
	s       *Store
	n       int64
	written atomic.Int64
}

// reserve takes n more bytes for r, or fails with ErrQuota.
func (r *reservation) reserve(n int64) error {
	if err := r.s.checkDisk(n); err != nil {
		return err
	}
	u := &r.s.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	if q := r.s.opt.Quota; q > 0 && u.bytes+u.reserved+n > q {
		return fmt.Errorf("%w: %d bytes stored, %d being written, %d more would pass the quota of %d",
			ErrQuota, u.bytes, u.reserved, n, q)
	}
	u.reserved += n
	r.n += n
	u.unwritten.Add(n)
	return nil
}

// grow makes sure r covers total bytes, reserving a step ahead when the
// quota leaves room for it.
func (r *reservation) grow(total int64) error {
	if total <= r.n {
		return nil
	}
	need := total - r.n
	if q := r.s.opt.Quota; q > 0 {
		u := &r.s.usage
		u.mu.Lock()
		room := q - u.bytes - u.reserved
		u.mu.Unlock()
		if room > need {
			need = min(need+growStep, room)
		}
	} else {
		need += growStep
	}
	return r.reserve(need)
}

// wrote records n bytes of data written to disk.
func (r *reservation) wrote(n int64) {
	r.written.Add(n)
	r.s.usage.unwritten.Add(-n)
}

// release gives the reservation back, after a failure or when the blob
// was already stored.
func (r *reservation) release() {
	u := &r.s.usage
	u.unwritten.Add(r.written.Load() - r.n)
	u.mu.Lock()
	u.reserved -= r.n
	u.mu.Unlock()
	r.n = 0
	r.written.Store(0)
}

// commit counts in the blob of size bytes the reservation was for, and
// gives the reservation back.
func (r *reservation) commit(size int64) {
	u := &r.s.usage
	u.unwritten.Add(r.written.Load() - r.n)
	u.mu.Lock()
	u.reserved -= r.n
	u.count++
	u.bytes += size
	u.mu.Unlock()
	r.n = 0
	r.written.Store(0)
}

// remove counts out a deleted blob.
func (u *usage) remove(size int64) {
	u.mu.Lock()
	u.count--
	u.bytes -= size
	u.mu.Unlock()
}

// checkDisk fails with ErrQuota if writing n more bytes of data (and
// their outboard) would leave less than MinFreeFraction of the filesystem
// free, counting what writes in progress still have to write.
func (s *Store) checkDisk(n int64) error {
	if s.opt.MinFreeFraction < 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return fmt.Errorf("checking free disk space: %w", err)
	}
	total := int64(st.Blocks) * int64(st.Bsize)
	avail := int64(st.Bavail) * int64(st.Bsize)
	need := n + n/GroupSize*parentSize + headerSize
	left := avail - s.usage.unwritten.Load() - need
	if float64(left) < s.opt.MinFreeFraction*float64(total) {
		return fmt.Errorf("%w: writing %d bytes would leave %d of the disk's %d bytes free, under %.0f%%",
			ErrQuota, n, max(left, 0), total, 100*s.opt.MinFreeFraction)
	}
	return nil
}

// noSpace makes an error from a filesystem that ran out of space (ENOSPC,
// or EDQUOT: a filesystem quota) an ErrQuota, so that a peer is answered
// quota and the operator reads that the disk is full. The disk rule
// (MinFreeFraction) normally refuses such a write before it starts; this
// is for a disk that something else filled meanwhile.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrQuota) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: the disk is full: %w", ErrQuota, err)
	}
	return err
}
