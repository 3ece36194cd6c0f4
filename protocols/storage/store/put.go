package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// Put stores the blob read from r: size bytes, or any number up to
// MaxBlobSize if size is -1 (unknown). It hashes the stream as it writes it
// to a temp file, stops reading at the first byte over MaxBlobSize or the
// quota (ErrTooLarge, ErrQuota), then writes the outboard, syncs both files
// and renames them into place. A stream longer or shorter than a declared
// size is ErrBadData, and so is content that does not hash to want when
// want is defined. On any error nothing is left on disk.
//
// A declared size is checked against the limits before anything is read,
// and lets Put hash and write in one pass; with an unknown size it hashes
// the groups as they come and builds the tree from their hashes at the
// end. If want is already stored, Put returns its Info without reading r.
// Putting content that is already stored (want undefined) reads it all and
// keeps one copy.
func (s *Store) Put(ctx context.Context, r io.Reader, size int64, want cid.Cid) (Info, error) {
	if s.closed.Load() {
		return Info{}, ErrClosed
	}
	if want.Defined() {
		info, err := s.Stat(want)
		if err == nil && size >= 0 && size != info.Size {
			return Info{}, fmt.Errorf("put %s: %w: %d bytes declared, the blob has %d", want, ErrBadData, size, info.Size)
		}
		if err == nil || !errors.Is(err, ErrNotFound) {
			return info, err
		}
	}
	if size < 0 {
		size = -1
	}
	if size > s.opt.MaxBlobSize {
		return Info{}, fmt.Errorf("put: %w: %d bytes, the limit is %d", ErrTooLarge, size, s.opt.MaxBlobSize)
	}
	t, err := s.newTemp(max(size, 0))
	if err != nil {
		return Info{}, fmt.Errorf("put: %w", noSpace(err))
	}
	defer t.discard()
	var root cv
	if size >= 0 {
		root, err = s.putSized(ctx, r, size, t)
	} else {
		size, root, err = s.putStream(ctx, r, t)
	}
	if err != nil {
		return Info{}, fmt.Errorf("put: %w", noSpace(err))
	}
	var rb [32]byte
	putCV(rb[:], &root)
	id := IDFromRoot(rb)
	if want.Defined() && !id.Equals(want) {
		return Info{}, fmt.Errorf("put: %w: the content is %s, want %s", ErrBadData, id, want)
	}
	info, err := s.commit(id, size, t)
	return info, noSpace(err)
}

// treeBuilder hashes the tree of a blob of known size in order, taking the
// groups' hashes from leaf and writing each parent to the outboard.
type treeBuilder struct {
	leaf func(i uint64, n int, root bool) (cv, error)
	out  *treeWriter
	node [parentSize]byte
}

// build hashes the subtree over [pos, pos+n), whose first parent has
// pre-order index idx.
func (b *treeBuilder) build(pos, n, idx uint64, root bool) (cv, error) {
	if n <= GroupSize {
		return b.leaf(pos/GroupSize, int(n), root)
	}
	mid := leftSize(n)
	l, err := b.build(pos, mid, idx+1, false)
	if err != nil {
		return cv{}, err
	}
	r, err := b.build(pos+mid, n-mid, idx+1+parentCount(mid), false)
	if err != nil {
		return cv{}, err
	}
	putParent(b.node[:], &l, &r)
	if err := b.out.put(parentOffset(idx), b.node[:]); err != nil {
		return cv{}, err
	}
	return hashParent(l, r, root), nil
}

// putSized writes and hashes a stream of size bytes in one pass.
func (s *Store) putSized(ctx context.Context, r io.Reader, size int64, t *tempBlob) (cv, error) {
	sp := newSpooler(t.data, &s.syncer, t.res.wrote)
	defer sp.stop()
	tw, err := newTreeWriter(t.tree, size)
	if err != nil {
		return cv{}, err
	}
	b := &treeBuilder{out: tw, leaf: func(i uint64, n int, root bool) (cv, error) {
		if err := ctx.Err(); err != nil {
			return cv{}, err
		}
		p, err := sp.grab(n)
		if err != nil {
			return cv{}, err
		}
		if k, err := io.ReadFull(r, p); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return cv{}, fmt.Errorf("%w: the stream ended after %d bytes, %d declared", ErrBadData, i*GroupSize+uint64(k), size)
			}
			return cv{}, fmt.Errorf("reading: %w", err)
		}
		return hashGroup(p, i, root), nil
	}}
	root, err := b.build(0, uint64(size), 0, true)
	if err != nil {
		return cv{}, err
	}
	var extra [1]byte
	if n, err := io.ReadFull(r, extra[:]); n > 0 {
		return cv{}, fmt.Errorf("%w: the stream is longer than the %d bytes declared", ErrBadData, size)
	} else if err != io.EOF {
		return cv{}, fmt.Errorf("reading: %w", err)
	}
	if err := sp.finish(); err != nil {
		return cv{}, err
	}
	return root, tw.flush()
}

// putStream writes a stream of unknown size and hashes its groups as they
// come; once the size is known, it builds the tree from their hashes.
func (s *Store) putStream(ctx context.Context, r io.Reader, t *tempBlob) (int64, cv, error) {
	sp := newSpooler(t.data, &s.syncer, t.res.wrote)
	defer sp.stop()
	hashes := &cvSpool{dir: s.tmp}
	defer hashes.close()
	first := groupPool.Get().(*[GroupSize]byte)
	defer groupPool.Put(first)
	var total int64
	for i := uint64(0); ; i++ {
		if err := ctx.Err(); err != nil {
			return 0, cv{}, err
		}
		want := int(min(GroupSize, s.opt.MaxBlobSize+1-total))
		p, err := sp.grab(want)
		if err != nil {
			return 0, cv{}, err
		}
		n, rerr := io.ReadFull(r, p)
		sp.unfill(want - n)
		total += int64(n)
		if total > s.opt.MaxBlobSize {
			return 0, cv{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.opt.MaxBlobSize)
		}
		if err := t.res.grow(total); err != nil {
			return 0, cv{}, err
		}
		if n > 0 {
			if i == 0 {
				copy(first[:], p[:n])
			}
			if err := hashes.add(hashGroup(p[:n], i, false)); err != nil {
				return 0, cv{}, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, cv{}, fmt.Errorf("reading: %w", rerr)
		}
	}
	if err := sp.finish(); err != nil {
		return 0, cv{}, err
	}
	root, err := s.buildFromHashes(total, first[:min(total, GroupSize)], hashes, t)
	return total, root, err
}

// buildFromHashes writes the outboard of a blob of size bytes from its
// groups' hashes and returns its root. first is the first group, which is
// hashed again as the root when it is the only one.
func (s *Store) buildFromHashes(size int64, first []byte, hashes *cvSpool, t *tempBlob) (cv, error) {
	tw, err := newTreeWriter(t.tree, size)
	if err != nil {
		return cv{}, err
	}
	if groupCount(uint64(size)) == 1 {
		return hashGroup(first, 0, true), tw.flush()
	}
	hr, err := hashes.reader()
	if err != nil {
		return cv{}, err
	}
	var h [32]byte
	b := &treeBuilder{out: tw, leaf: func(uint64, int, bool) (cv, error) {
		if _, err := io.ReadFull(hr, h[:]); err != nil {
			return cv{}, fmt.Errorf("reading group hashes: %w", err)
		}
		return getCV(h[:]), nil
	}}
	root, err := b.build(0, uint64(size), 0, true)
	if err != nil {
		return cv{}, err
	}
	return root, tw.flush()
}
