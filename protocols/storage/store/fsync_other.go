//go:build !linux

package store

import "os"

// fileSyncer syncs with fsync(2); on Linux it goes through AIO instead
// (fsync_linux.go).
type fileSyncer struct{}

func (*fileSyncer) sync(f *os.File) error { return f.Sync() }

// start runs f.Sync on a goroutine and returns where its error will come.
func (*fileSyncer) start(f *os.File) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.Sync() }()
	return done
}

func (*fileSyncer) close() {}
