package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	logging "github.com/ipfs/go-log/v2"
)

var log = logging.Logger("peernode/store")

const (
	blobsDir    = "blobs"
	tmpDir      = "tmp"
	outboardExt = ".obao"
	dirMode     = 0o700

	// shardAt is where a blob's shard name starts in its ID string. The
	// multibase "b" and the next six base32 characters carry the constant
	// version, codec and multihash bytes; the seventh mixes two constant
	// bits with three of the digest; the two after it are digest bits
	// only, so blobs spread evenly over 1024 shards.
	shardAt  = 8
	shardLen = 2
)

// Info describes a stored blob.
type Info struct {
	ID     cid.Cid
	Size   int64
	Stored time.Time // mtime of the blob file
}

// Store is a directory of content-addressed blobs, each stored as its data
// file and its bao outboard:
//
//	<dir>/blobs/<shard>/<id>       the data
//	<dir>/blobs/<shard>/<id>.obao  its outboard (length header, then parents)
//	<dir>/tmp/                     writes in progress
//
// A data file is renamed into place only after its outboard, so a visible
// blob always has one. It is safe for concurrent use; one process at a
// time may open a directory.
type Store struct {
	dir, blobs, tmp string
	opt             Options
	lock            *os.File // the directory, flock-ed while open
	closed          atomic.Bool
	usage           usage
	locks           keyLocks
	syncer          fileSyncer
}

// Open opens the store in dir, creating it if needed. It removes what
// crashed writes left (temp files, outboards without their blob) and counts
// the blobs.
func Open(dir string, opt Options) (*Store, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("store options: %w", err)
	}
	s := &Store{dir: dir, blobs: filepath.Join(dir, blobsDir), tmp: filepath.Join(dir, tmpDir), opt: opt}
	for _, d := range []string{dir, s.blobs, s.tmp} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	lock, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: in use by another process (%w)", dir, err)
	}
	s.lock = lock
	if err := s.clean(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	log.Infow("blob store open", "dir", dir, "blobs", s.usage.count, "bytes", s.usage.bytes)
	return s, nil
}

// clean empties tmp/ and counts the blobs, removing outboards left without
// their blob, and rebuilding those missing or of the wrong size (see
// Check).
func (s *Store) clean() error {
	tmp, err := os.ReadDir(s.tmp)
	if err != nil {
		return err
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return err
		}
	}
	if len(tmp) > 0 {
		log.Infow("removed unfinished writes", "files", len(tmp))
	}
	var damaged []damagedBlob
	err = s.walk(func(shard string, names map[string]bool) error {
		for name := range names {
			path := filepath.Join(s.blobs, shard, name)
			if base, ok := strings.CutSuffix(name, outboardExt); ok {
				if !names[base] {
					log.Infow("removing an outboard without its blob", "file", path)
					if err := os.Remove(path); err != nil {
						return err
					}
				}
				continue
			}
			if !isBlobName(shard, name) {
				log.Warnw("unknown file in the blob store", "file", path)
				continue
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			s.usage.count++
			s.usage.bytes += fi.Size()
			if problem, err := outboardProblem(path, fi.Size(), names[name+outboardExt]); err != nil {
				return err
			} else if problem != "" {
				damaged = append(damaged, damagedBlob{path, problem})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range damaged {
		if err := s.repairAtOpen(d); err != nil {
			return err
		}
	}
	return nil
}

// damagedBlob is a blob Open found without a sound outboard.
type damagedBlob struct{ path, problem string }

// outboardProblem says what is wrong with the outboard of the blob at path
// (size bytes), from its size alone, or "" if nothing is.
func outboardProblem(path string, size int64, present bool) (string, error) {
	if !present {
		return "it has no outboard", nil
	}
	fi, err := os.Lstat(path + outboardExt)
	if err != nil {
		return "", err
	}
	if want := outboardSize(size); fi.Size() != want {
		return fmt.Sprintf("its outboard has %d bytes, want %d", fi.Size(), want), nil
	}
	return "", nil
}

// repairAtOpen rebuilds the outboard Open found missing or damaged, from
// the data, or moves the data to corrupt/ if it does not match its ID: the
// blob is served again, or no longer counted.
func (s *Store) repairAtOpen(d damagedBlob) error {
	id, err := ParseID(filepath.Base(d.path))
	if err != nil {
		return err
	}
	root, err := Root(id)
	if err != nil {
		return err
	}
	log.Warnw("repairing a blob", "blob", id, "problem", d.problem)
	_, err = s.repair(context.Background(), CheckResult{ID: id, Problem: d.problem}, d.path, root)
	return err
}

// walk calls fn with the names in each shard directory.
func (s *Store) walk(fn func(shard string, names map[string]bool) error) error {
	shards, err := os.ReadDir(s.blobs)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(s.blobs, sh.Name()))
		if err != nil {
			return err
		}
		names := make(map[string]bool, len(entries))
		for _, e := range entries {
			if e.Type().IsRegular() {
				names[e.Name()] = true
			}
		}
		if err := fn(sh.Name(), names); err != nil {
			return err
		}
	}
	return nil
}

// isBlobName reports whether name is the canonical ID string of a blob of
// shard.
func isBlobName(shard, name string) bool {
	id, err := ParseID(name)
	return err == nil && id.String() == name && shardOf(name) == shard
}

func shardOf(name string) string { return name[shardAt : shardAt+shardLen] }

// Close releases the directory. Calls that start later fail with
// ErrClosed; a Put or Receive in progress fails when it would store its
// blob. Close may be called more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.syncer.close()
	return s.lock.Close() // drops the flock
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// path is where blob id is stored, after checking id.
func (s *Store) path(id cid.Cid) (string, error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	if err := CheckID(id); err != nil {
		return "", err
	}
	name := id.String()
	return filepath.Join(s.blobs, shardOf(name), name), nil
}

// Stat describes blob id, or fails with ErrNotFound.
func (s *Store) Stat(id cid.Cid) (Info, error) {
	path, err := s.path(id)
	if err != nil {
		return Info{}, err
	}
	return statBlob(id, path)
}

func statBlob(id cid.Cid, path string) (Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Info{}, notFound(id, err)
	}
	return Info{ID: id, Size: fi.Size(), Stored: fi.ModTime()}, nil
}

// notFound turns a missing file into ErrNotFound.
func notFound(id cid.Cid, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return err
}

// Has reports whether blob id is stored.
func (s *Store) Has(id cid.Cid) bool {
	_, err := s.Stat(id)
	return err == nil
}

// OpenRange opens bytes [off, off+length) of blob id for reading. The data
// was verified when it was stored; Verify checks it again.
func (s *Store) OpenRange(id cid.Cid, off, length int64) (io.ReadCloser, error) {
	path, err := s.path(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, notFound(id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !validRange(fi.Size(), off, length) {
		f.Close()
		return nil, fmt.Errorf("%w: %d+%d of blob %s of %d bytes", ErrBadRange, off, length, id, fi.Size())
	}
	return &rangeReader{SectionReader: io.NewSectionReader(f, off, length), f: f}, nil
}

type rangeReader struct {
	*io.SectionReader
	f *os.File
}

func (r *rangeReader) Close() error { return r.f.Close() }

// Delete removes blob id, or fails with ErrNotFound. Readers that have it
// open keep reading it.
func (s *Store) Delete(id cid.Cid) error {
	path, err := s.path(id)
	if err != nil {
		return err
	}
	unlock := s.locks.lock(id.String())
	defer unlock()
	fi, err := os.Stat(path)
	if err != nil {
		return notFound(id, err)
	}
	// The data first: a visible blob always has its outboard.
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	s.usage.remove(fi.Size())
	if err := os.Remove(path + outboardExt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// List describes every stored blob, sorted by ID string.
func (s *Store) List() ([]Info, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	type named struct {
		name string
		info Info
	}
	var blobs []named
	err := s.walk(func(shard string, names map[string]bool) error {
		for name := range names {
			if !isBlobName(shard, name) {
				continue
			}
			id, _ := cid.Decode(name)
			info, err := statBlob(id, filepath.Join(s.blobs, shard, name))
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			blobs = append(blobs, named{name, info})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	infos := make([]Info, len(blobs))
	for i, b := range blobs {
		infos[i] = b.info
	}
	return infos, nil
}

// Usage is the number of blobs stored and their total size.
func (s *Store) Usage() (count int, bytes int64) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	return s.usage.count, s.usage.bytes
}
