package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peernode/api"
)

// blobDaemon is a control API backend with an in-memory blob store, for
// the CLI's tests; every method besides the blob ones is absent (a call
// panics).
type blobDaemon struct {
	api.Backend
	// err, if set, is what every blob call returns.
	err error
	// breakAfter, if positive, makes ranges fail after that many bytes.
	breakAfter int64

	mu    sync.Mutex
	blobs map[string][]byte
	// sizes are the sizes the puts announced.
	sizes []int64
	// damaged blobs check as repaired; rotten ones as corrupt, and are
	// dropped.
	damaged, rotten map[string]bool
}

func newBlobDaemon() *blobDaemon { return &blobDaemon{blobs: map[string][]byte{}} }

// testStored is when the fake stored every blob.
var testStored = time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)

// testBlobID is a blob's CIDv1, over SHA-256 rather than the node's
// BLAKE3: the CLI only checks that an ID is a CIDv1.
func testBlobID(t testing.TB, data []byte) string {
	t.Helper()
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh).String()
}

func (d *blobDaemon) PutBlob(_ context.Context, r io.Reader, size int64, replicas int) (api.PutResult, error) {
	if d.err != nil {
		return api.PutResult{}, d.err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return api.PutResult{}, err
	}
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		return api.PutResult{}, err
	}
	id := cid.NewCidV1(cid.Raw, mh).String()
	d.mu.Lock()
	d.blobs[id] = data
	d.sizes = append(d.sizes, size)
	d.mu.Unlock()
	holders := []string{"12D3KooWself"}
	for i := 1; i < replicas; i++ {
		holders = append(holders, fmt.Sprintf("12D3KooWpeer%d", i))
	}
	return api.PutResult{ID: id, Size: int64(len(data)), Holders: holders}, nil
}

func (d *blobDaemon) OpenBlob(_ context.Context, id string) (api.Blob, error) {
	if d.err != nil {
		return nil, d.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	data, ok := d.blobs[id]
	if !ok {
		return nil, api.Mark(fmt.Errorf("blob %s: no node holds it", id), api.ErrNotFound)
	}
	return memBlob{info: api.BlobInfo{ID: id, Size: int64(len(data)), Stored: testStored, Local: true}, data: data, breakAfter: d.breakAfter}, nil
}

func (d *blobDaemon) ListBlobs() ([]api.BlobInfo, error) {
	if d.err != nil {
		return nil, d.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []api.BlobInfo
	for id, data := range d.blobs {
		out = append(out, api.BlobInfo{ID: id, Size: int64(len(data)), Stored: testStored, Local: true})
	}
	return out, nil
}

func (d *blobDaemon) CheckBlob(_ context.Context, id string) (api.BlobCheck, error) {
	if d.err != nil {
		return api.BlobCheck{}, d.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	data, ok := d.blobs[id]
	if !ok {
		return api.BlobCheck{}, api.Mark(fmt.Errorf("blob %s is not stored on this node", id), api.ErrNotFound)
	}
	res := api.BlobCheck{ID: id, Size: int64(len(data)), Result: api.CheckOK}
	switch {
	case d.rotten[id]:
		delete(d.blobs, id)
		res.Result, res.Problem, res.MovedTo = api.CheckCorrupt, "the data no longer hashes to its ID", "/data/storage/corrupt/"+id+".x"
	case d.damaged[id]:
		delete(d.damaged, id)
		res.Result, res.Problem = api.CheckRepaired, "it has no outboard"
	}
	return res, nil
}

func (d *blobDaemon) DeleteBlob(id string) error {
	if d.err != nil {
		return d.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.blobs[id]; !ok {
		return api.Mark(fmt.Errorf("blob %s is not stored on this node", id), api.ErrNotFound)
	}
	delete(d.blobs, id)
	return nil
}

type memBlob struct {
	info       api.BlobInfo
	data       []byte
	breakAfter int64
}

func (b memBlob) Info() api.BlobInfo { return b.info }

func (b memBlob) Range(_ context.Context, off, length int64) (io.ReadCloser, error) {
	r := io.Reader(bytes.NewReader(b.data[off : off+length]))
	if b.breakAfter > 0 {
		r = io.MultiReader(io.LimitReader(r, b.breakAfter), errReader{errors.New("holder sent bad bytes")})
	}
	return io.NopCloser(r), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// writeTemp writes data to a new file and returns its path.
func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "input.bin")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func stdoutOf(env *cliEnv) string { return env.stdout.(*bytes.Buffer).String() }

func TestPutGetFlags(t *testing.T) {
	env, _ := testEnv(nil)
	file, replicas, common, err := parsePut(env, []string{"f.txt"})
	require.NoError(t, err)
	require.Equal(t, "f.txt", file)
	require.Equal(t, 1, replicas)
	require.False(t, common.json)
	file, replicas, common, err = parsePut(env, []string{"-", "--replicas", "16", "--json"})
	require.NoError(t, err)
	require.Equal(t, "-", file)
	require.Equal(t, 16, replicas)
	require.True(t, common.json)

	id := testBlobID(t, []byte("x"))
	gotID, out, _, err := parseGet(env, []string{id, "-o", "f.bin"})
	require.NoError(t, err)
	require.Equal(t, id, gotID)
	require.Equal(t, "f.bin", out)
	_, out, _, err = parseGet(env, []string{"--output=g.bin", id, "--json"})
	require.NoError(t, err)
	require.Equal(t, "g.bin", out)
	_, out, _, err = parseGet(env, []string{id, "-o", "-"})
	require.NoError(t, err)
	require.Empty(t, out, "- is standard output")

	sub, ids, _, err := parseBlobs(env, []string{"rm", id, id})
	require.NoError(t, err)
	require.Equal(t, "rm", sub)
	require.Equal(t, []string{id, id}, ids)

	// A CIDv0 is a CID, not a blob ID.
	v0 := "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
	for _, tt := range []struct {
		parse func([]string) error
		args  []string
		want  string
	}{
		{putParse(env), nil, "expected one file"},
		{putParse(env), []string{"a", "b"}, "expected one file"},
		{putParse(env), []string{"a", "--replicas", "0"}, "--replicas 0: want an integer from 1 to 16"},
		{putParse(env), []string{"a", "--replicas", "17"}, "--replicas 17"},
		{putParse(env), []string{"a", "--replicas", "x"}, "replicas"},
		{getParse(env), nil, "expected one blob ID"},
		{getParse(env), []string{"nope"}, `"nope" is not a blob ID: blob IDs look like bafkr4i...`},
		{getParse(env), []string{v0}, "is not a blob ID"},
		{getParse(env), []string{id, "--json"}, "--json prints what was saved, and needs -o FILE"},
		{getParse(env), []string{id, id}, "expected one blob ID"},
		{blobsParse(env), nil, "expected a subcommand: ls, rm or check"},
		{blobsParse(env), []string{"list"}, `unknown subcommand "list": want ls, rm or check`},
		{blobsParse(env), []string{"check", "nope"}, `"nope" is not a blob ID`},
		{blobsParse(env), []string{"ls", id}, "unexpected argument"},
		{blobsParse(env), []string{"rm"}, "expected one or more blob IDs"},
		{blobsParse(env), []string{"rm", id, "nope"}, `"nope" is not a blob ID`},
	} {
		err := tt.parse(tt.args)
		require.ErrorAs(t, err, new(usageError), "%v", tt.args)
		require.ErrorContains(t, err, tt.want, "%v", tt.args)
	}
}

func putParse(env *cliEnv) func([]string) error {
	return func(args []string) error { _, _, _, err := parsePut(env, args); return err }
}

func getParse(env *cliEnv) func([]string) error {
	return func(args []string) error { _, _, _, err := parseGet(env, args); return err }
}

func blobsParse(env *cliEnv) func([]string) error {
	return func(args []string) error { _, _, _, err := parseBlobs(env, args); return err }
}

// Usage errors exit with status 2 before the commands look for a daemon;
// without a daemon, well-formed commands exit with status 1 and say how to
// start one.
func TestBlobCommandsWithoutDaemon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id := testBlobID(t, []byte("x"))
	file := writeTemp(t, []byte("data"))
	for _, args := range [][]string{
		{"put", "--data-dir", dir},
		{"put", file, "--replicas", "0", "--data-dir", dir},
		{"get", "not-an-id", "--data-dir", dir},
		{"get", id, "--json", "--data-dir", dir},
		{"blobs", "--data-dir", dir},
		{"blobs", "rm", "--data-dir", dir},
		{"blobs", "check", "not-an-id", "--data-dir", dir},
	} {
		env, errb := testEnv(nil)
		require.Equal(t, exitUsage, run(env, args), "%v", args)
		require.Contains(t, errb.String(), "Run 'peernode "+args[0]+" --help'", "%v", args)
	}
	for _, args := range [][]string{
		{"put", file, "--data-dir", dir},
		{"get", id, "--data-dir", dir},
		{"blobs", "ls", "--data-dir", dir},
		{"blobs", "rm", id, "--data-dir", dir},
		{"blobs", "check", "--data-dir", dir},
		{"blobs", "check", id, "--data-dir", dir},
	} {
		env, errb := testEnv(nil)
		require.Equal(t, exitError, run(env, args), "%v", args)
		require.Contains(t, errb.String(), "no peernode daemon is running", "%v", args)
		require.Contains(t, errb.String(), "peernode daemon --data-dir "+dir, "%v", args)
	}
	env, errb := testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"put", filepath.Join(dir, "missing"), "--data-dir", dir}))
	require.Contains(t, errb.String(), "no such file or directory")
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"put", t.TempDir(), "--data-dir", dir}))
	require.Contains(t, errb.String(), "is a directory: put stores one file")
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "no command creates a data directory")

	for cmd, want := range map[string][]string{
		"put":   {"Usage: peernode put FILE [--replicas K]", "Examples:", "peernode put backup.tar --replicas 3 --json", "-replicas", "(default 1)", "from 1 to 16"},
		"get":   {"Usage: peernode get ID [-o FILE]", "Examples:", "peernode get bafkr4i... -o photo.jpg", "-o string", "-output", "FILE.*.part"},
		"blobs": {"Usage: peernode blobs SUBCOMMAND", "Examples:", "peernode blobs rm bafkr4i...", "ls", "rm ID...", "check [ID...]", "peernode blobs check"},
	} {
		env, _ := testEnv(nil)
		require.Equal(t, exitOK, run(env, []string{cmd, "--help"}))
		for _, w := range want {
			require.Contains(t, stdoutOf(env), w, cmd)
		}
	}
	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"help"}))
	for _, w := range []string{"put ", "get ", "blobs "} {
		require.Contains(t, stdoutOf(env), "\n  "+w)
	}
}

func TestPutGetCommands(t *testing.T) {
	d := newBlobDaemon()
	dir := serveFake(t, d)
	data := randomData(t, 300<<10)
	id := testBlobID(t, data)
	file := writeTemp(t, data)

	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"put", file, "--data-dir", dir}), errb.String())
	require.Equal(t, id+"\n", stdoutOf(env), "the ID alone, for scripts")
	require.Empty(t, errb.String(), "no progress bar off a terminal")
	require.Equal(t, []int64{int64(len(data))}, d.sizes, "a file's size is announced")

	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"put", file, "--replicas", "3", "--json", "--data-dir", dir}), errb.String())
	require.JSONEq(t, fmt.Sprintf(`{"id": %q, "size": %d, "holders": ["12D3KooWself", "12D3KooWpeer1", "12D3KooWpeer2"]}`, id, len(data)), stdoutOf(env))

	// Standard input: its size is unknown.
	env, errb = testEnv(nil)
	require.NoError(t, putCommand(env, []string{"-", "--data-dir", dir}, strings.NewReader("from stdin"), false), errb.String())
	stdinID := testBlobID(t, []byte("from stdin"))
	require.Equal(t, stdinID+"\n", stdoutOf(env))
	require.Equal(t, int64(-1), d.sizes[len(d.sizes)-1])

	// To standard output.
	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"get", id, "--data-dir", dir}), errb.String())
	require.True(t, bytes.Equal(data, env.stdout.(*bytes.Buffer).Bytes()))

	// To a file, through a temporary one.
	outDir := t.TempDir()
	out := filepath.Join(outDir, "copy.bin")
	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"get", id, "-o", out, "--data-dir", dir}), errb.String())
	require.Equal(t, "saved "+id+" (300.0 KiB) to "+out+"\n", stdoutOf(env))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	requireOnlyFiles(t, outDir, "copy.bin")

	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"get", stdinID, "--json", "-o", out, "--data-dir", dir}), errb.String())
	require.JSONEq(t, fmt.Sprintf(`{"id": %q, "size": 10, "file": %q}`, stdinID, out), stdoutOf(env))
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "from stdin", string(got), "an existing file is replaced")
	requireOnlyFiles(t, outDir, "copy.bin")

	// An unknown blob: 404, what to do next, no file.
	unknown := testBlobID(t, []byte("nobody has it"))
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"get", unknown, "-o", filepath.Join(outDir, "x"), "--data-dir", dir}))
	require.Contains(t, errb.String(), "404")
	require.Contains(t, errb.String(), "no node holds it")
	require.Contains(t, errb.String(), "check the ID ('peernode blobs ls'")
	requireOnlyFiles(t, outDir, "copy.bin")
}

// requireOnlyFiles checks that dir holds exactly names: no temporary file
// left behind.
func requireOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	require.ElementsMatch(t, names, got)
}

// A download that breaks off leaves neither FILE nor a temporary file, and
// an older FILE untouched.
func TestGetFailureLeavesNoFile(t *testing.T) {
	d := newBlobDaemon()
	dir := serveFake(t, d)
	data := randomData(t, 1<<20)
	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"put", writeTemp(t, data), "--data-dir", dir}), errb.String())
	id := strings.TrimSpace(stdoutOf(env))
	d.breakAfter = 300 << 10

	outDir := t.TempDir()
	out := filepath.Join(outDir, "copy.bin")
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"get", id, "-o", out, "--data-dir", dir}))
	require.Contains(t, errb.String(), "the transfer broke off after")
	require.Empty(t, stdoutOf(env))
	requireOnlyFiles(t, outDir)

	require.NoError(t, os.WriteFile(out, []byte("older"), 0o600))
	env, _ = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"get", id, "-o", out, "--data-dir", dir}))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "older", string(got))
	requireOnlyFiles(t, outDir, "copy.bin")

	// To standard output, the error follows what arrived: status 1.
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"get", id, "--data-dir", dir}))
	require.Less(t, env.stdout.(*bytes.Buffer).Len(), len(data))
	require.Contains(t, errb.String(), "unexpected EOF")

	// A directory is no file name.
	d.breakAfter = 0
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"get", id, "-o", outDir, "--data-dir", dir}))
	require.Contains(t, errb.String(), "is a directory: give -o a file name")
}

func TestBlobsCommand(t *testing.T) {
	d := newBlobDaemon()
	dir := serveFake(t, d)
	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "ls", "--data-dir", dir}), errb.String())
	require.Equal(t, "no blobs: this node holds none (store one with 'peernode put FILE')\n", stdoutOf(env))
	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "ls", "--json", "--data-dir", dir}))
	require.JSONEq(t, `[]`, stdoutOf(env))

	var ids []string
	for _, n := range []int{10, 3 << 20} {
		env, errb := testEnv(nil)
		require.Equal(t, exitOK, run(env, []string{"put", writeTemp(t, make([]byte, n)), "--data-dir", dir}), errb.String())
		ids = append(ids, strings.TrimSpace(stdoutOf(env)))
	}
	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "ls", "--data-dir", dir}), errb.String())
	lines := strings.Split(stdoutOf(env), "\n")
	require.Regexp(t, `^ID\s+SIZE\s+STORED$`, lines[0])
	small, big := 1, 2
	if ids[0] > ids[1] {
		small, big = 2, 1
	}
	require.Regexp(t, `^`+ids[0]+`\s+10 B\s+2026-01-02 03:04:05$`, lines[small])
	require.Regexp(t, `^`+ids[1]+`\s+3\.0 MiB\s+2026-01-02 03:04:05$`, lines[big])
	require.Equal(t, "2 blobs, 3.0 MiB", lines[4])

	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "ls", "--json", "--data-dir", dir}))
	var list []map[string]any
	require.NoError(t, json.Unmarshal(env.stdout.(*bytes.Buffer).Bytes(), &list))
	require.Len(t, list, 2)
	require.Contains(t, list[0], "stored")
	require.Equal(t, true, list[0]["local"])

	// One removed, one unknown: going on past it, status 1.
	unknown := testBlobID(t, []byte("never stored"))
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"blobs", "rm", unknown, ids[0], "--data-dir", dir}))
	require.Equal(t, "removed "+ids[0]+"\n", stdoutOf(env))
	require.Contains(t, errb.String(), "peernode blobs: rm "+unknown+": API answered 404 Not Found: blob "+unknown+" is not stored on this node\n"+
		"This node holds no copy of it: 'peernode blobs ls' lists those it holds.\n")
	require.Contains(t, errb.String(), "peernode blobs: 1 of 2 blobs not removed\n")

	env, _ = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"blobs", "rm", ids[0], ids[1], "--json", "--data-dir", dir}))
	require.JSONEq(t, fmt.Sprintf(`[{"id": %q, "removed": false, "error": "API answered 404 Not Found: blob %s is not stored on this node"},
		{"id": %q, "removed": true}]`, ids[0], ids[0], ids[1]), stdoutOf(env))
	require.Empty(t, d.blobs)
}

// blobs check goes through every blob, says what it found of each, and
// fails if any was corrupt or could not be checked.
func TestBlobsCheckCommand(t *testing.T) {
	d := newBlobDaemon()
	dir := serveFake(t, d)
	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "check", "--data-dir", dir}), errb.String())
	require.Equal(t, "no blobs: this node holds none\n", stdoutOf(env))
	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "check", "--json", "--data-dir", dir}))
	require.JSONEq(t, `[]`, stdoutOf(env))

	var ids []string
	for _, n := range []int{10, 20, 30} {
		env, errb := testEnv(nil)
		require.Equal(t, exitOK, run(env, []string{"put", writeTemp(t, randomData(t, n)), "--data-dir", dir}), errb.String())
		ids = append(ids, strings.TrimSpace(stdoutOf(env)))
	}
	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"blobs", "check", ids[0], "--data-dir", dir}), errb.String())
	require.Equal(t, "ok        "+ids[0]+"\n\n1 checked: 1 ok, 0 repaired, 0 corrupt, 0 not checked\n", stdoutOf(env))

	d.damaged = map[string]bool{ids[1]: true}
	d.rotten = map[string]bool{ids[2]: true}
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"blobs", "check", "--data-dir", dir}))
	out := stdoutOf(env)
	require.Contains(t, out, "ok        "+ids[0]+"\n")
	require.Contains(t, out, "repaired  "+ids[1]+": it has no outboard; the outboard was rebuilt from the data\n")
	require.Contains(t, out, "CORRUPT   "+ids[2]+": the data no longer hashes to its ID; moved out of the store to /data/storage/corrupt/"+ids[2]+".x\n")
	require.Contains(t, out, "\n3 checked: 1 ok, 1 repaired, 1 corrupt, 0 not checked\n")
	require.Contains(t, errb.String(), "peernode blobs: 1 of 3 blobs corrupt: this node no longer holds them; fetch them again")

	// The corrupt one is gone: asked for by ID, it is not checked; the
	// others are, and the command goes on past it.
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"blobs", "check", ids[2], ids[1], "--json", "--data-dir", dir}))
	require.JSONEq(t, fmt.Sprintf(`[{"id": %q, "size": 0, "result": "error", "error": "API answered 404 Not Found: blob %s is not stored on this node"},
		{"id": %q, "size": 20, "result": "ok"}]`, ids[2], ids[2], ids[1]), stdoutOf(env))
	require.Contains(t, errb.String(), "peernode blobs: 1 of 2 blobs not checked")
}

// The daemon's errors come with what to do next.
func TestBlobCommandErrors(t *testing.T) {
	full := newBlobDaemon()
	full.err = api.Mark(errors.New("quota of 1 GiB reached"), api.ErrInsufficientStorage)
	dir := serveFake(t, full)
	env, errb := testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"put", writeTemp(t, []byte("x")), "--data-dir", dir}))
	require.Contains(t, errb.String(), "507 Insufficient Storage: quota of 1 GiB reached\nThe node's storage is full")

	few := newBlobDaemon()
	few.err = api.Mark(errors.New("2 storage nodes reachable, 3 copies asked"), api.ErrUnavailable)
	dir = serveFake(t, few)
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"put", writeTemp(t, []byte("x")), "--replicas", "3", "--data-dir", dir}))
	require.Contains(t, errb.String(), "503 Service Unavailable: 2 storage nodes reachable, 3 copies asked\nToo few nodes are reachable")

	// A daemon without blob storage.
	old := serveFake(t, fakeDaemon{})
	for _, args := range [][]string{
		{"put", writeTemp(t, []byte("x"))},
		{"get", testBlobID(t, []byte("x"))},
		{"blobs", "ls"},
		{"blobs", "rm", testBlobID(t, []byte("x"))},
		{"blobs", "check", testBlobID(t, []byte("x"))},
	} {
		env, errb := testEnv(nil)
		require.Equal(t, exitError, run(env, append(args, "--data-dir", old)), "%v", args)
		require.Contains(t, errb.String(), "501 Not Implemented: this daemon does not store blobs", "%v", args)
	}
}

func TestPutGetProgress(t *testing.T) {
	d := newBlobDaemon()
	dir := serveFake(t, d)
	big := writeTemp(t, make([]byte, progressMinBytes+1))
	small := writeTemp(t, []byte("small"))

	// On a terminal: a bar for a big file, that ends at 100%.
	env, errb := testEnv(nil)
	require.NoError(t, putCommand(env, []string{big, "--data-dir", dir}, nil, true))
	require.Regexp(t, `\rput \[#{24}\] 100%  8\.0 MiB / 8\.0 MiB  \S+ \S+/s\x1b\[K\n$`, errb.String())
	id := strings.TrimSpace(stdoutOf(env))

	// Of unknown size: bytes and rate only.
	env, errb = testEnv(nil)
	require.NoError(t, putCommand(env, []string{"-", "--data-dir", dir}, strings.NewReader("tiny"), true))
	require.Regexp(t, `\rput 4 B  \S+ \S+/s\x1b\[K\n$`, errb.String())

	// No bar for a small file, nor with --json, nor off a terminal.
	for _, tt := range []struct {
		args []string
		tty  bool
	}{
		{[]string{small}, true},
		{[]string{big, "--json"}, true},
		{[]string{big}, false},
	} {
		env, errb := testEnv(nil)
		require.NoError(t, putCommand(env, append(tt.args, "--data-dir", dir), nil, tt.tty))
		require.Empty(t, errb.String(), "%v", tt)
	}

	out := filepath.Join(t.TempDir(), "copy.bin")
	env, errb = testEnv(nil)
	require.NoError(t, getCommand(env, []string{id, "-o", out, "--data-dir", dir}, true))
	require.Regexp(t, `\rget \[#{24}\] 100%  8\.0 MiB / 8\.0 MiB  \S+ \S+/s\x1b\[K\n$`, errb.String())
	env, errb = testEnv(nil)
	require.NoError(t, getCommand(env, []string{id, "-o", out, "--json", "--data-dir", dir}, true))
	require.Empty(t, errb.String())
}
