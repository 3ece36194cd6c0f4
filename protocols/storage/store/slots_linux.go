package store

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// readv is one preadv(2) of the file into bufs from off: the bytes read,
// and io.EOF when none could be because the file ends.
func readv(f *os.File, bufs [][]byte, off int64) (int, error) {
	if len(bufs) > maxIovecs {
		bufs = bufs[:maxIovecs]
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Preadv(int(fd), bufs, off)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &os.PathError{Op: "preadv", Path: f.Name(), Err: rerr}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// maxIovecs is Linux's IOV_MAX.
const maxIovecs = 1024
