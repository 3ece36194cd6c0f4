package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"peernode/protocols/storage/store"
)

func writeRandomFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, err := rand.Read(data)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, data
}

// put puts file through the daemon of dataDir and returns the JSON answer.
func put(t *testing.T, dataDir, file string, extra ...string) (out struct {
	ID      string   `json:"id"`
	Size    int64    `json:"size"`
	Holders []string `json:"holders"`
}) {
	t.Helper()
	r := peernode(t, append([]string{"put", "--data-dir", dataDir, "--json", file}, extra...)...)
	require.Zero(t, r.code, "put: %s", r)
	decodeJSON(t, r, &out)
	return out
}

// Two daemons: a put with two replicas lands on both; the other daemon
// lists it, and after removing its copy gets it back from the first.
func TestDaemonsPutAndGet(t *testing.T) {
	t.Parallel()
	a := startDaemon(t, t.TempDir(), "alpha")
	b := startDaemon(t, t.TempDir(), "beta", "--bootstrap", a.addr())
	waitPeer(t, a.dir, b.id, "verified", isStatus("verified"))
	waitPeer(t, b.dir, a.id, "verified", isStatus("verified"))

	file, data := writeRandomFile(t, t.TempDir(), "photo.jpg", 3<<20+5)
	res := put(t, a.dir, file, "--replicas", "2")
	require.Equal(t, []string{a.id, b.id}, res.Holders)
	require.EqualValues(t, len(data), res.Size)

	r := peernode(t, "blobs", "ls", "--data-dir", b.dir, "--json")
	require.Zero(t, r.code, "%s", r)
	require.Contains(t, r.stdout, res.ID)

	r = peernode(t, "blobs", "rm", "--data-dir", b.dir, res.ID)
	require.Zero(t, r.code, "%s", r)
	out := filepath.Join(t.TempDir(), "copy.jpg")
	r = peernode(t, "get", "--data-dir", b.dir, "-o", out, res.ID)
	require.Zero(t, r.code, "%s", r)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the copy differs")

	r = peernode(t, "get", "--data-dir", b.dir, "-o", filepath.Join(t.TempDir(), "x"), store.Sum([]byte("nobody has this")).String())
	require.NotZero(t, r.code)
}

// A daemon killed in the middle of receiving a blob shows no partial blob
// after a restart, and every blob it had completed still verifies.
func TestDaemonKilledMidWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := launchDaemon(t, nil, dir, "victim")
	if !d.waitReadyOrExit() {
		t.Fatalf("daemon did not start:\n%s", d.result())
	}
	d.parseBanner()

	files := t.TempDir()
	var done []string
	for i, size := range []int{0, 1, 100 << 10, 2<<20 + 3} {
		file, _ := writeRandomFile(t, files, "f"+string(rune('a'+i)), size)
		done = append(done, put(t, dir, file).ID)
	}

	// An upload of unknown size that stops half-way: the daemon holds a
	// temporary file when it is killed.
	c, err := daemonClient(dir)
	require.NoError(t, err)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = c.PutBlob(context.Background(), pr, -1, 1) }()
	chunk := make([]byte, 1<<20)
	_, err = rand.Read(chunk)
	require.NoError(t, err)
	tmp := filepath.Join(dir, "storage", "tmp")
	waitUntil(t, waitTimeout, func() (bool, string) {
		if _, err := pw.Write(chunk); err != nil {
			return false, err.Error()
		}
		entries, _ := os.ReadDir(tmp)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				return true, ""
			}
		}
		return false, "no partial file in storage/tmp yet"
	})
	require.NoError(t, d.cmd.Process.Kill())
	<-d.exited
	d.cancel()

	d2 := startDaemon(t, dir, "victim")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "the partial write was not cleaned up")
	r := peernode(t, "blobs", "ls", "--data-dir", dir, "--json")
	require.Zero(t, r.code, "%s", r)
	var listed []struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed))
	var ids []string
	for _, b := range listed {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	slices.Sort(done)
	require.Equal(t, done, ids, "exactly the completed blobs are listed")
	d2.stop()

	st, err := store.Open(filepath.Join(dir, "storage"), store.Options{MinFreeFraction: -1})
	require.NoError(t, err)
	defer st.Close()
	for _, s := range done {
		id, err := store.ParseID(s)
		require.NoError(t, err)
		require.NoError(t, st.Verify(id), "blob %s", s)
	}
}

// blobs check against a running daemon and real files: a lost outboard is
// rebuilt and the blob served again; rotten data is moved out of the store,
// kept, and reported with status 1.
func TestDaemonBlobsCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startDaemon(t, dir, "checker")
	file, data := writeRandomFile(t, t.TempDir(), "data.bin", 1<<20+1)
	id := put(t, dir, file).ID
	matches, err := filepath.Glob(filepath.Join(dir, "storage", "blobs", "*", id))
	require.NoError(t, err)
	require.Len(t, matches, 1, "the blob's data file")
	blob := matches[0]

	r := peernode(t, "blobs", "check", "--data-dir", dir)
	require.Zero(t, r.code, "%s", r)
	require.Contains(t, r.stdout, "ok        "+id)

	require.NoError(t, os.Remove(blob+".obao"))
	r = peernode(t, "blobs", "check", "--data-dir", dir, "--json")
	require.Zero(t, r.code, "%s", r)
	var results []struct {
		ID, Result, Problem string
	}
	decodeJSON(t, r, &results)
	require.Len(t, results, 1)
	require.Equal(t, "repaired", results[0].Result, "%s", r)
	require.Contains(t, results[0].Problem, "no outboard")
	out := filepath.Join(t.TempDir(), "back.bin")
	r = peernode(t, "get", "--data-dir", dir, "-o", out, id)
	require.Zero(t, r.code, "%s", r)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	f, err := os.OpenFile(blob, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{data[5] ^ 1}, 5)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	r = peernode(t, "blobs", "check", id, "--data-dir", dir)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stdout, "CORRUPT   "+id)
	require.Contains(t, r.stderr, "1 of 1 blobs corrupt")
	kept, err := filepath.Glob(filepath.Join(dir, "storage", "corrupt", id+".*"))
	require.NoError(t, err)
	require.Len(t, kept, 1, "the corrupt bytes are kept")
	b, err := os.ReadFile(kept[0])
	require.NoError(t, err)
	require.Len(t, b, len(data))
	r = peernode(t, "blobs", "ls", "--data-dir", dir)
	require.Zero(t, r.code, "%s", r)
	require.NotContains(t, r.stdout, id)
}
