// Package atomicfile replaces files so that a crash never leaves a partial
// one behind.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Write writes data to a temporary file beside path, syncs it and
// renames it into place, so a crash leaves either the old file or the new
// one, never a partial one. The directory is synced after the rename.
func Write(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// AsidePath is where a file that could not be read is kept:
// <path>.corrupt-<UTC time>.
func AsidePath(path string, now time.Time) string {
	return fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
}

// CopyAside keeps a copy of path's current contents at AsidePath, so the
// file can be rewritten without losing what an operator may need to
// recover. It returns where the copy is.
func CopyAside(path string, now time.Time) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	aside := AsidePath(path, now)
	return aside, Write(aside, b, 0o600)
}
