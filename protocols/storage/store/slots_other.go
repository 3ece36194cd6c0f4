//go:build !linux

package store

import "os"

// readv reads the file into bufs from off, one ReadAt per buffer.
func readv(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := f.ReadAt(b, off)
		total += n
		off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
