package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Verify hashes blob id's data again and checks it, and every node of its
// outboard, against id: ErrBadData if anything differs.
func (s *Store) Verify(id cid.Cid) error {
	root, err := Root(id)
	if err != nil {
		return err
	}
	b, err := s.openBlob(id)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer b.close()
	if err := verifyFiles(context.Background(), b, root); err != nil {
		log.Errorw("stored blob is corrupt", "blob", id, "err", err)
		return fmt.Errorf("verify %s: %w", id, err)
	}
	return nil
}

func verifyFiles(ctx context.Context, b *blobFiles, root [32]byte) error {
	if b.size == 0 && root != emptyRoot {
		return fmt.Errorf("%w: empty, but not the ID of the empty blob", ErrBadData)
	}
	fi, err := b.tree.Stat()
	if err != nil {
		return err
	}
	if want := outboardSize(b.size); fi.Size() != want {
		return fmt.Errorf("%w: the outboard has %d bytes, want %d", ErrBadData, fi.Size(), want)
	}
	data := getReader(io.NewSectionReader(b.data, 0, b.size))
	defer putReader(data)
	tree := getReader(io.NewSectionReader(b.tree, headerSize, fi.Size()-headerSize))
	defer putReader(tree)
	buf := groupPool.Get().(*[GroupSize]byte)
	defer groupPool.Put(buf)
	d := &decoder{
		tree: tree, data: data, lo: 0, hi: uint64(b.size),
		buffer: func(n int) ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return buf[:n], nil
		},
	}
	err = d.walk(getCV(root[:]), 0, uint64(b.size), true)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The files changed size under us.
		err = fmt.Errorf("%w: %w", ErrBadData, err)
	}
	return err
}
