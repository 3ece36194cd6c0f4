package store

import (
	"fmt"
	"io"
	"os"
)

// groupSlots reads a blob's chunk groups straight into their places in an
// encoding being built: the extractor adds the slot of each group as it
// lays out the encoding, and fill reads the run of slots (consecutive in
// the file, apart in the buffer, where parents sit between them) with one
// scatter read. Through a buffered reader every byte was copied twice.
type groupSlots struct {
	f     *os.File
	off   int64 // file offset of the first slot
	slots [][]byte
	n     int // bytes in slots
}

func (g *groupSlots) add(p []byte) {
	g.slots = append(g.slots, p)
	g.n += len(p)
}

// fill reads the slots added since the last fill. A file that ends before
// them is io.ErrUnexpectedEOF.
func (g *groupSlots) fill() error {
	if len(g.slots) == 0 {
		return nil
	}
	slots, off := g.slots, g.off
	g.slots, g.off, g.n = g.slots[:0], g.off+int64(g.n), 0
	if err := readSlots(g.f, slots, off); err != nil {
		return fmt.Errorf("reading chunk groups %d-%d: %w", off/GroupSize, g.off/GroupSize-1, unexpectedEOF(err))
	}
	return nil
}

// readSlots fills slots with the file's bytes from off on, in order, or
// fails with io.EOF if the file ends first.
func readSlots(f *os.File, slots [][]byte, off int64) error {
	for len(slots) > 0 {
		n, err := readv(f, slots, off)
		off += int64(n)
		for rest := n; rest > 0 && len(slots) > 0; {
			if rest >= len(slots[0]) {
				rest -= len(slots[0])
				slots = slots[1:]
				continue
			}
			// A short read ended inside this slot: go on with its rest,
			// in a list of our own (the caller's is left as it was).
			slots = append([][]byte{slots[0][rest:]}, slots[1:]...)
			rest = 0
		}
		switch {
		case len(slots) == 0:
			return nil
		case err != nil:
			return err
		case n == 0:
			return io.EOF
		}
	}
	return nil
}
