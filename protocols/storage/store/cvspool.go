package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// cvSpoolMem is how many bytes of group hashes a cvSpool keeps in memory:
// those of 2048 groups, 32 MiB of data. (A variable for tests.)
var cvSpoolMem = treeWindow

// cvSpool keeps the group hashes of a blob of unknown size in order: in
// memory for the first cvSpoolMem bytes of them, then in a temp file.
type cvSpool struct {
	dir     string
	buf     []byte
	f       *os.File
	w       *bufio.Writer
	scratch [32]byte
}

func (c *cvSpool) add(h cv) error {
	b := c.scratch[:]
	putCV(b, &h)
	if c.w != nil {
		_, err := c.w.Write(b)
		return err
	}
	if len(c.buf)+len(b) <= cvSpoolMem {
		c.buf = append(c.buf, b...)
		return nil
	}
	f, err := os.CreateTemp(c.dir, "hashes-*")
	if err != nil {
		return fmt.Errorf("spooling group hashes: %w", err)
	}
	c.f, c.w = f, bufio.NewWriterSize(f, treeWindow)
	_, err = c.w.Write(append(c.buf, b...))
	c.buf = nil
	return err
}

// reader reads the hashes back from the first.
func (c *cvSpool) reader() (io.Reader, error) {
	if c.f == nil {
		return bytes.NewReader(c.buf), nil
	}
	if err := c.w.Flush(); err != nil {
		return nil, fmt.Errorf("spooling group hashes: %w", err)
	}
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(c.f, treeWindow), nil
}

// close removes the temp file, if any.
func (c *cvSpool) close() {
	if c.f != nil {
		err := errors.Join(c.f.Close(), os.Remove(c.f.Name()))
		if err != nil {
			log.Warnw("removing a temp file", "file", c.f.Name(), "err", err)
		}
	}
}
