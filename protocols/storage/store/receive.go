package store

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Receive stores blob id from enc, its combined bao encoding (what
// WriteEncoded(w, id, 0, size) writes), verifying it as it comes: at the
// first chunk group or tree node that does not match id it stops reading
// with ErrBadData. size is what the sender declared; it is checked against
// MaxBlobSize and the quota before anything is read, and an encoding for
// another size is ErrBadData. Receive reads exactly the encoding, never
// past it. On any error nothing is left on disk. If id is already stored,
// Receive returns its Info without reading enc.
func (s *Store) Receive(ctx context.Context, id cid.Cid, size int64, enc io.Reader) (Info, error) {
	root, err := Root(id)
	if err != nil {
		return Info{}, err
	}
	if info, err := s.Stat(id); err == nil {
		if info.Size != size {
			return Info{}, fmt.Errorf("receive %s: %w: %d bytes declared, the blob has %d", id, ErrBadData, size, info.Size)
		}
		return info, nil
	} else if s.closed.Load() {
		return Info{}, ErrClosed
	}
	switch {
	case size < 0:
		return Info{}, fmt.Errorf("receive %s: %w: declared size %d", id, ErrBadData, size)
	case size > s.opt.MaxBlobSize:
		return Info{}, fmt.Errorf("receive %s: %w: %d bytes, the limit is %d", id, ErrTooLarge, size, s.opt.MaxBlobSize)
	case size == 0 && root != emptyRoot:
		// An empty encoding holds no group to check: the ID must be the
		// empty blob's.
		return Info{}, fmt.Errorf("receive %s: %w: not the ID of the empty blob", id, ErrBadData)
	}
	t, err := s.newTemp(size)
	if err != nil {
		return Info{}, fmt.Errorf("receive %s: %w", id, noSpace(err))
	}
	defer t.discard()
	if err := s.receive(ctx, t, root, size, enc); err != nil {
		return Info{}, fmt.Errorf("receive %s: %w", id, noSpace(err))
	}
	info, err := s.commit(id, size, t)
	return info, noSpace(err)
}

// receive verifies enc into t's files: the groups to the data file, the
// header and parents to the outboard, which they make up in order.
func (s *Store) receive(ctx context.Context, t *tempBlob, root [32]byte, size int64, enc io.Reader) error {
	if err := readHeader(enc, size); err != nil {
		return err
	}
	sp := newSpooler(t.data, &s.syncer, t.res.wrote)
	defer sp.stop()
	tw := bufio.NewWriterSize(t.tree, treeWindow)
	if _, err := tw.Write(header(size)); err != nil {
		return err
	}
	d := &decoder{
		tree: enc, data: enc, lo: 0, hi: uint64(size),
		buffer: func(n int) ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return sp.grab(n)
		},
		parent: func(node []byte) error {
			_, err := tw.Write(node)
			return err
		},
	}
	if err := d.walk(getCV(root[:]), 0, uint64(size), true); err != nil {
		return err
	}
	if err := sp.finish(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing outboard: %w", err)
	}
	return nil
}
