package store

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileSyncer syncs files through Linux AIO, so that the goroutine waiting
// for the disk is parked in the netpoller rather than held in fsync(2).
//
// A goroutine in a blocking syscall keeps its P (one of GOMAXPROCS) until
// the runtime's monitor takes it back, which it does only when the wait
// outlasts one of its ticks and, for waits under 10 ms, when no P is idle.
// A put syncs every syncStep as it writes, and each sync takes a few
// milliseconds of disk time: on two cores that left one P in fsync for
// almost half of a 256 MiB put while the transfer's goroutines waited to
// run (runtime traces: 143 of 470 ms with a P in a syscall and work
// queued). With IOCB_CMD_FSYNC the kernel runs the same vfs_fsync on its
// workqueue and signals an eventfd, which one reaper goroutine reads
// through the netpoller.
//
// Anything the kernel refuses (no AIO, the context's slots all in use, a
// file system without fsync) falls back to f.Sync, so a sync is never
// skipped and its error is the one fsync(2) gives.
type fileSyncer struct {
	once sync.Once
	ok   bool          // set up; false means f.Sync
	ctx  uintptr       // aio_context_t
	ev   *os.File      // the eventfd, read through the netpoller
	efd  int           // its descriptor (ev.Fd would make ev blocking)
	done chan struct{} // closed when the reaper has stopped

	mu      sync.Mutex
	closed  bool
	next    uint64
	waiting map[uint64]chan error
	busy    sync.WaitGroup // syncs submitted and not yet delivered
	viaAIO  atomic.Int64   // syncs the kernel completed through AIO
}

// aioSlots bounds the syncs in flight through one store's context; more
// at once fall back to f.Sync. The kernel reserves at least twice this,
// out of a system-wide fs.aio-max-nr (65536 by default).
const aioSlots = 32

// iocb is the kernel's struct iocb (64 bytes). aio_key and aio_rw_flags
// swap places on big-endian machines; both are zero here.
type iocb struct {
	data     uint64
	key      uint32
	rwFlags  uint32
	opcode   uint16
	reqprio  int16
	fildes   uint32
	buf      uint64
	nbytes   uint64
	offset   int64
	reserved uint64
	flags    uint32
	resfd    uint32
}

// ioEvent is the kernel's struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

const (
	iocbCmdFsync  = 2 // IOCB_CMD_FSYNC
	iocbFlagResfd = 1 // IOCB_FLAG_RESFD: signal the eventfd in resfd
)

// Compile-time checks of the layouts the kernel expects.
var (
	_ [unsafe.Sizeof(iocb{}) - 64]byte
	_ [64 - unsafe.Sizeof(iocb{})]byte
	_ [unsafe.Sizeof(ioEvent{}) - 32]byte
	_ [32 - unsafe.Sizeof(ioEvent{})]byte
)

// setup creates the AIO context, the eventfd and the reaper, once, at the
// first sync: a store that never writes takes no context.
func (y *fileSyncer) setup() {
	y.once.Do(func() {
		if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, aioSlots, uintptr(unsafe.Pointer(&y.ctx)), 0); e != 0 {
			log.Debugw("AIO unavailable, syncing with fsync", "err", e)
			return
		}
		efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			log.Debugw("eventfd unavailable, syncing with fsync", "err", err)
			unix.Syscall(unix.SYS_IO_DESTROY, y.ctx, 0, 0)
			return
		}
		y.efd = efd
		y.ev = os.NewFile(uintptr(efd), "aio-eventfd") // non-blocking: read through the netpoller
		y.waiting = make(map[uint64]chan error)
		y.done = make(chan struct{})
		y.ok = true
		go y.reap()
	})
}

// sync syncs f (fsync(2): its data and metadata) and returns fsync's error.
func (y *fileSyncer) sync(f *os.File) error {
	ch, err := y.submitSync(f)
	if ch == nil {
		if errors.Is(err, os.ErrClosed) {
			return err
		}
		return f.Sync()
	}
	return <-ch
}

// start starts syncing f and returns where fsync's error will come. When
// the kernel will not take it, f.Sync runs on a goroutine of its own.
func (y *fileSyncer) start(f *os.File) <-chan error {
	ch, err := y.submitSync(f)
	if ch != nil {
		return ch
	}
	done := make(chan error, 1)
	if errors.Is(err, os.ErrClosed) {
		done <- err
	} else {
		go func() { done <- f.Sync() }()
	}
	return done
}

// submitSync submits an fsync of f through AIO. A nil channel means it was
// not submitted; err then says why if it was a failure rather than a
// refusal that f.Sync should follow (no AIO, EAGAIN when all slots are
// busy, EINVAL for a file with no fsync).
func (y *fileSyncer) submitSync(f *os.File) (chan error, error) {
	y.setup()
	ch, id := y.register()
	if ch == nil {
		return nil, nil
	}
	if err := y.submit(f, id); err != nil {
		y.unregister(id)
		return nil, err
	}
	return ch, nil
}

// register reserves a request ID and its delivery channel, or returns nil
// if syncs go through f.Sync.
func (y *fileSyncer) register() (chan error, uint64) {
	if !y.ok {
		return nil, 0
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.closed {
		return nil, 0
	}
	y.next++
	ch := make(chan error, 1)
	y.waiting[y.next] = ch
	y.busy.Add(1)
	return ch, y.next
}

// unregister drops a request that was not submitted, unless failAll has
// already answered it.
func (y *fileSyncer) unregister(id uint64) {
	y.mu.Lock()
	_, ok := y.waiting[id]
	delete(y.waiting, id)
	y.mu.Unlock()
	if ok {
		y.busy.Done()
	}
}

// submit queues an fsync of f whose completion the reaper delivers to id.
func (y *fileSyncer) submit(f *os.File, id uint64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cb := &iocb{data: id, opcode: iocbCmdFsync, flags: iocbFlagResfd, resfd: uint32(y.efd)}
	var serr error
	err = rc.Control(func(fd uintptr) {
		cb.fildes = uint32(fd)
		list := [1]*iocb{cb}
		if _, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, y.ctx, 1, uintptr(unsafe.Pointer(&list[0]))); e != 0 {
			serr = e
		}
		runtime.KeepAlive(list)
	})
	if err != nil {
		return err
	}
	return serr
}

// reap delivers completions each time the eventfd is signalled, until
// close closes it.
func (y *fileSyncer) reap() {
	defer close(y.done)
	var (
		count  [8]byte
		events [aioSlots]ioEvent
		now    unix.Timespec // zero: take what is complete, never wait
	)
	for {
		if _, err := y.ev.Read(count[:]); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				y.failAll(fmt.Errorf("waiting for fsync: %w", err))
			}
			return
		}
		for {
			n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, y.ctx, 0, aioSlots,
				uintptr(unsafe.Pointer(&events[0])), uintptr(unsafe.Pointer(&now)), 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				y.failAll(fmt.Errorf("reaping fsyncs: %w", e))
				return
			}
			if n == 0 {
				break
			}
			for _, ev := range events[:n] {
				var err error
				if ev.res < 0 {
					err = syscall.Errno(-ev.res)
				}
				y.deliver(ev.data, err)
			}
		}
	}
}

func (y *fileSyncer) deliver(id uint64, err error) {
	y.mu.Lock()
	ch := y.waiting[id]
	delete(y.waiting, id)
	y.mu.Unlock()
	if ch != nil {
		y.viaAIO.Add(1)
		ch <- err
		y.busy.Done()
	}
}

// failAll fails the syncs waiting when the reaper cannot go on, and sends
// later ones to f.Sync. It never reports success for a sync it did not see
// complete.
func (y *fileSyncer) failAll(err error) {
	log.Errorw("AIO fsync reaper stopped, syncing with fsync from now on", "err", err)
	y.mu.Lock()
	y.closed = true
	waiting := y.waiting
	y.waiting = map[uint64]chan error{}
	y.mu.Unlock()
	for _, ch := range waiting {
		ch <- err
		y.busy.Done()
	}
}

// close waits for the syncs in flight, then stops the reaper and frees
// the context. Syncs after close go through f.Sync.
func (y *fileSyncer) close() {
	y.once.Do(func() {}) // no setup after close
	if !y.ok {
		return
	}
	y.mu.Lock()
	y.closed = true
	y.mu.Unlock()
	y.busy.Wait()
	y.ev.Close()
	<-y.done
	unix.Syscall(unix.SYS_IO_DESTROY, y.ctx, 0, 0)
}
