package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
)

// corruptDir, beside blobs/ and tmp/, keeps the data of blobs that no
// longer match their ID: Check and Open move them there rather than delete
// what may be the only copy an operator has.
const corruptDir = "corrupt"

// errNoOutboard is a blob whose data file has no outboard beside it (also
// ErrNotFound to those who serve it).
var errNoOutboard = errors.New("no outboard")

// CheckStatus is what Check found of a blob.
type CheckStatus int

const (
	// CheckOK: the data and the outboard match the ID.
	CheckOK CheckStatus = iota
	// CheckRepaired: the data matches the ID, the outboard did not (or was
	// missing); it has been rebuilt from the data.
	CheckRepaired
	// CheckCorrupt: the data does not match the ID. It has been moved out
	// of the store, to CheckResult.MovedTo.
	CheckCorrupt
)

func (c CheckStatus) String() string {
	switch c {
	case CheckOK:
		return "ok"
	case CheckRepaired:
		return "repaired"
	case CheckCorrupt:
		return "corrupt"
	}
	return "unknown"
}

// CheckResult is what Check found and did.
type CheckResult struct {
	ID     cid.Cid
	Size   int64
	Status CheckStatus
	// Problem says what did not match, unless Status is CheckOK.
	Problem string
	// MovedTo is where a corrupt blob's data is kept now.
	MovedTo string
}

// Check hashes blob id's data and outboard again and compares them with
// id. A blob whose data matches but whose outboard does not (or is
// missing) gets its outboard rebuilt from the data; a blob whose data does
// not match is taken out of the store (it is no longer listed, served or
// counted) and its data moved to the corrupt/ directory beside blobs/,
// never deleted. Only I/O errors, a closed store, a canceled ctx or a blob
// that is not stored are errors.
func (s *Store) Check(ctx context.Context, id cid.Cid) (CheckResult, error) {
	res := CheckResult{ID: id}
	root, err := Root(id)
	if err != nil {
		return res, err
	}
	path, err := s.path(id)
	if err != nil {
		return res, err
	}
	b, err := s.openBlob(id)
	switch {
	case err == nil:
		res.Size = b.size
		err = verifyFiles(ctx, b, root)
		b.close()
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrBadData) {
			return res, fmt.Errorf("check %s: %w", id, err)
		}
	case errors.Is(err, errNoOutboard), errors.Is(err, ErrBadData):
	default:
		return res, fmt.Errorf("check: %w", err)
	}
	res.Problem = err.Error()
	unlock := s.locks.lock(id.String())
	defer unlock()
	if s.closed.Load() {
		return res, ErrClosed
	}
	return s.repair(ctx, res, path, root)
}

// repair rebuilds the outboard of the blob at path from its data, or, if
// the data does not hash to root, moves the data to corrupt/. The caller
// holds the blob's lock.
func (s *Store) repair(ctx context.Context, res CheckResult, path string, root [32]byte) (CheckResult, error) {
	size, ok, err := s.rebuildOutboard(ctx, path, root)
	if errors.Is(err, fs.ErrNotExist) {
		return res, notFound(res.ID, err) // deleted meanwhile
	}
	if err != nil {
		return res, fmt.Errorf("check %s: %w", res.ID, err)
	}
	res.Size = size
	if ok {
		res.Status = CheckRepaired
		log.Warnw("rebuilt a blob's outboard from its data", "blob", res.ID, "problem", res.Problem)
		return res, nil
	}
	res.Status = CheckCorrupt
	res.Problem = fmt.Sprintf("%v: the data no longer hashes to its ID", ErrBadData)
	if res.MovedTo, err = s.quarantine(path, size); err != nil {
		return res, fmt.Errorf("check %s: the data is corrupt, and moving it out of the store failed: %w", res.ID, err)
	}
	log.Errorw("stored blob is corrupt: moved out of the store", "blob", res.ID, "to", res.MovedTo)
	return res, nil
}

// rebuildOutboard hashes the data file at path and, if it hashes to root,
// writes its outboard anew (through a temp file, synced, renamed over the
// old one). ok is whether the data matched.
func (s *Store) rebuildOutboard(ctx context.Context, path string, root [32]byte) (size int64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size = fi.Size()
	tmp, err := os.CreateTemp(s.tmp, "rebuild-*"+outboardExt)
	if err != nil {
		return size, false, fmt.Errorf("creating a temp file: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	tw, err := newTreeWriter(tmp, size)
	if err != nil {
		return size, false, err
	}
	data := getReader(io.NewSectionReader(f, 0, size))
	defer putReader(data)
	buf := groupPool.Get().(*[GroupSize]byte)
	defer groupPool.Put(buf)
	b := &treeBuilder{out: tw, leaf: func(i uint64, n int, isRoot bool) (cv, error) {
		if err := ctx.Err(); err != nil {
			return cv{}, err
		}
		if _, err := io.ReadFull(data, buf[:n]); err != nil {
			return cv{}, fmt.Errorf("reading %s: %w", path, unexpectedEOF(err))
		}
		return hashGroup(buf[:n], i, isRoot), nil
	}}
	got, err := b.build(0, uint64(size), 0, true)
	if err != nil {
		return size, false, err
	}
	var gb [32]byte
	putCV(gb[:], &got)
	if gb != root {
		return size, false, nil
	}
	if err := tw.flush(); err != nil {
		return size, false, err
	}
	if err := s.syncer.sync(tmp); err != nil {
		return size, false, fmt.Errorf("syncing the outboard: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return size, false, err
	}
	name := tmp.Name()
	tmp = nil
	if err := os.Rename(name, path+outboardExt); err != nil {
		_ = os.Remove(name)
		return size, false, fmt.Errorf("storing the outboard: %w", err)
	}
	return size, true, syncDir(filepath.Dir(path))
}

// quarantine moves the data file at path (size bytes, counted in the
// usage) to corrupt/, removes its outboard, and returns where the data went.
func (s *Store) quarantine(path string, size int64) (string, error) {
	dir := filepath.Join(s.dir, corruptDir)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return "", err
	}
	base := filepath.Join(dir, filepath.Base(path)+"."+time.Now().UTC().Format("20060102T150405Z"))
	dst := base
	for i := 2; exists(dst); i++ {
		dst = base + "." + strconv.Itoa(i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	s.usage.remove(size)
	if err := os.Remove(path + outboardExt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warnw("removing the outboard of a corrupt blob", "file", path+outboardExt, "err", err)
	}
	return dst, errors.Join(syncDir(dir), syncDir(filepath.Dir(path)))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
