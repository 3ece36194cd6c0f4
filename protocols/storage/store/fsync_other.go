//go:build !linux

package store

import "os"

// fileSyncer syncs with fsync(2); on Linux it goes through AIO instead
// (fsync_linux.go).
type fileSyncer struct{}

func (*fileSyncer) sync(f *os.File) error { return f.Sync() }

func (*fileSyncer) close() {}
