package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// tempBlob is a blob being written: its data and outboard files in tmp/
// and its quota reservation. Unless it was stored, discard removes all of
// it.
type tempBlob struct {
	s                  *Store
	data, tree         *os.File
	dataPath, treePath string
	res                reservation
	stored             bool
}

// newTemp reserves size bytes (more can be reserved as data comes) and
// creates the temp files.
func (s *Store) newTemp(size int64) (*tempBlob, error) {
	t := &tempBlob{s: s, res: reservation{s: s}}
	if err := t.res.reserve(size); err != nil {
		return nil, err
	}
	var err error
	if t.data, err = os.CreateTemp(s.tmp, "blob-*"); err == nil {
		t.dataPath = t.data.Name()
		if t.tree, err = os.CreateTemp(s.tmp, "blob-*"+outboardExt); err == nil {
			t.treePath = t.tree.Name()
		}
	}
	if err != nil {
		t.discard()
		return nil, fmt.Errorf("creating temp files: %w", err)
	}
	return t, nil
}

// closeFiles closes the temp files, syncing them first if durable is set.
// The two syncs run at once: the file system can commit both in one
// journal transaction, and a small blob waits for one disk flush, not two.
func (t *tempBlob) closeFiles(durable bool) error {
	files := []**os.File{&t.data, &t.tree}
	errs := make([]error, 2*len(files))
	if durable {
		var wg sync.WaitGroup
		for i, f := range files {
			if *f != nil {
				wg.Go(func() { errs[i] = t.s.syncer.sync(*f) })
			}
		}
		wg.Wait()
	}
	for i, f := range files {
		if *f != nil {
			errs[len(files)+i] = (*f).Close()
			*f = nil
		}
	}
	return errors.Join(errs...)
}

// discard removes the temp files and gives back the reservation, unless
// the blob was stored.
func (t *tempBlob) discard() {
	if t.stored {
		return
	}
	_ = t.closeFiles(false)
	for _, p := range []string{t.dataPath, t.treePath} {
		if p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warnw("removing a temp file", "file", p, "err", err)
			}
		}
	}
	t.res.release()
}

// commit stores t as blob id of size bytes: both files are synced, the
// outboard and then the data renamed into place, and the shard directory
// synced. If the blob is stored already, t is left for discard.
func (s *Store) commit(id cid.Cid, size int64, t *tempBlob) (Info, error) {
	name := id.String()
	dir := filepath.Join(s.blobs, shardOf(name))
	path := filepath.Join(dir, name)
	if info, err := statBlob(id, path); err == nil {
		return info, nil
	}
	if err := t.closeFiles(true); err != nil {
		return Info{}, fmt.Errorf("syncing %s: %w", id, err)
	}
	if err := s.makeShard(dir); err != nil {
		return Info{}, err
	}
	unlock := s.locks.lock(name)
	defer unlock()
	if s.closed.Load() {
		return Info{}, ErrClosed
	}
	if info, err := statBlob(id, path); err == nil {
		return info, nil // stored meanwhile
	}
	if err := os.Rename(t.treePath, path+outboardExt); err != nil {
		return Info{}, fmt.Errorf("storing %s: %w", id, err)
	}
	err := os.Rename(t.dataPath, path)
	if err == nil {
		if err = syncDir(dir); err != nil {
			_ = os.Remove(path)
		}
	}
	if err != nil {
		_ = os.Remove(path + outboardExt)
		return Info{}, fmt.Errorf("storing %s: %w", id, err)
	}
	t.stored = true
	t.res.commit(size)
	info, err := statBlob(id, path)
	if err != nil {
		info = Info{ID: id, Size: size, Stored: time.Now()}
	}
	return info, nil
}

// makeShard creates a shard directory unless it exists.
func (s *Store) makeShard(dir string) error {
	err := os.Mkdir(dir, dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		err = syncDir(s.blobs)
	}
	if err != nil {
		return fmt.Errorf("creating shard %s: %w", dir, err)
	}
	return nil
}

// syncDir syncs directory dir, so that the names it just got or lost
// last. It calls fsync(2) itself: a directory's sync is one short journal
// commit, for which AIO's completion path (a kernel worker, the eventfd,
// the netpoller) costs more than the P it would free.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
