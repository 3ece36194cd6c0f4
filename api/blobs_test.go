package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memBlobs is an in-memory blob store for the API's tests: a blob's ID is
// the hex of its SHA-256.
type memBlobs struct {
	fakeBackend
	// err, if set, is what every blob call returns.
	err error
	// maxSize, if positive, makes PutBlob refuse a larger blob with
	// ErrTooLarge as soon as it has read past it.
	maxSize int64
	// breakAfter, if positive, makes ranges fail with breakErr after that
	// many bytes; failFirst makes their first read fail with breakErr.
	breakAfter int64
	failFirst  bool
	breakErr   error
	// onRead, if set, is called with the bytes read so far after each read
	// of an upload.
	onRead func(int64)

	mu sync.Mutex
	// blobs and stored are the local blobs; remote is a blob OpenBlob
	// finds "in the network".
	blobs  map[string][]byte
	stored map[string]time.Time
	remote []byte
	puts   []putCall
}

type putCall struct {
	reader   string // the reader's type
	size     int64
	replicas int
}

func newMemBlobs() *memBlobs {
	return &memBlobs{blobs: map[string][]byte{}, stored: map[string]time.Time{}}
}

func blobID(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// putChunk is how much PutBlob reads at a time.
const putChunk = 64 << 10

func (m *memBlobs) PutBlob(_ context.Context, r io.Reader, size int64, replicas int) (PutResult, error) {
	m.mu.Lock()
	m.puts = append(m.puts, putCall{fmt.Sprintf("%T", r), size, replicas})
	m.mu.Unlock()
	if m.err != nil {
		return PutResult{}, m.err
	}
	var data []byte
	buf := make([]byte, putChunk)
	for {
		n, err := r.Read(buf)
		data = append(data, buf[:n]...)
		if m.onRead != nil && n > 0 {
			m.onRead(int64(len(data)))
		}
		if m.maxSize > 0 && int64(len(data)) > m.maxSize {
			return PutResult{}, Mark(fmt.Errorf("blob is over the maximum size of %d bytes: split it", m.maxSize), ErrTooLarge)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return PutResult{}, fmt.Errorf("store blob: %w", err)
		}
	}
	if size >= 0 && int64(len(data)) != size {
		return PutResult{}, Mark(fmt.Errorf("announced %d bytes, got %d", size, len(data)), ErrBadRequest)
	}
	id := blobID(data)
	m.mu.Lock()
	m.blobs[id] = data
	m.stored[id] = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.mu.Unlock()
	holders := []string{fakeSelf}
	for i := 1; i < replicas; i++ {
		holders = append(holders, fmt.Sprintf("12D3KooWpeer%d", i))
	}
	return PutResult{ID: id, Size: int64(len(data)), Holders: holders}, nil
}

func (m *memBlobs) OpenBlob(_ context.Context, id string) (Blob, error) {
	if m.err != nil {
		return nil, m.err
	}
	if _, err := hex.DecodeString(id); err != nil || len(id) != 2*sha256.Size {
		return nil, Mark(fmt.Errorf("blob ID %q is malformed", id), ErrBadRequest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if data, ok := m.blobs[id]; ok {
		return &memBlob{m: m, info: BlobInfo{ID: id, Size: int64(len(data)), Stored: m.stored[id], Local: true}, data: data}, nil
	}
	if m.remote != nil && id == blobID(m.remote) {
		return &memBlob{m: m, info: BlobInfo{ID: id, Size: int64(len(m.remote))}, data: m.remote}, nil
	}
	return nil, Mark(fmt.Errorf("blob %s: no node holds it", id), ErrNotFound)
}

func (m *memBlobs) CheckBlob(_ context.Context, id string) (BlobCheck, error) {
	if m.err != nil {
		return BlobCheck{}, m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.blobs[id]
	if !ok {
		return BlobCheck{}, Mark(fmt.Errorf("blob %s is not stored on this node", id), ErrNotFound)
	}
	if blobID(data) != id {
		delete(m.blobs, id)
		return BlobCheck{ID: id, Size: int64(len(data)), Result: CheckCorrupt, Problem: "data does not match", MovedTo: "/corrupt/" + id}, nil
	}
	return BlobCheck{ID: id, Size: int64(len(data)), Result: CheckOK}, nil
}

func (m *memBlobs) ListBlobs() ([]BlobInfo, error) {
	if m.err != nil {
		return nil, m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []BlobInfo
	for id, data := range m.blobs {
		out = append(out, BlobInfo{ID: id, Size: int64(len(data)), Stored: m.stored[id], Local: true})
	}
	return out, nil
}

func (m *memBlobs) DeleteBlob(id string) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[id]; !ok {
		return Mark(fmt.Errorf("blob %s is not stored here", id), ErrNotFound)
	}
	delete(m.blobs, id)
	return nil
}

type memBlob struct {
	m    *memBlobs
	info BlobInfo
	data []byte
}

func (b *memBlob) Info() BlobInfo { return b.info }

func (b *memBlob) Range(_ context.Context, off, length int64) (io.ReadCloser, error) {
	r := io.Reader(bytes.NewReader(b.data[off : off+length]))
	switch {
	case b.m.failFirst:
		r = &breakingReader{err: b.m.breakErr}
	case b.m.breakAfter > 0:
		r = &breakingReader{r: io.LimitReader(r, b.m.breakAfter), err: b.m.breakErr}
	}
	return io.NopCloser(r), nil
}

// breakingReader reads r, then fails with err instead of io.EOF.
type breakingReader struct {
	r   io.Reader
	err error
}

func (b *breakingReader) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.r = nil
		err = nil
		if n == 0 {
			err = b.err
		}
	}
	return n, err
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// blobRequest sends a request to the blob API and returns the answer, its
// body read.
func blobRequest(t *testing.T, method, addr, path string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestBlobPutGetRoundTrip(t *testing.T) {
	m := newMemBlobs()
	c := NewClient(serve(t, m), token)
	ctx := context.Background()
	for _, size := range []int{0, 1, 100 << 10, 3 << 20} {
		data := randomBytes(t, size)
		for _, announce := range []int64{int64(size), -1} {
			res, err := c.PutBlob(ctx, bytes.NewReader(data), announce, 2)
			require.NoError(t, err, "size %d", size)
			require.Equal(t, PutResult{ID: blobID(data), Size: int64(size), Holders: []string{fakeSelf, "12D3KooWpeer1"}}, res)
			last := m.puts[len(m.puts)-1]
			require.Equal(t, "*api.countReader", last.reader, "the backend reads the request's stream, not a buffered copy")
			require.Equal(t, 2, last.replicas)
			if announce >= 0 {
				require.Equal(t, int64(size), last.size, "Content-Length is the size")
			} else if size > 0 {
				require.Equal(t, int64(-1), last.size, "a chunked upload has no size")
			}

			rc, total, err := c.GetBlob(ctx, res.ID, 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, int64(size), total)
			require.True(t, bytes.Equal(data, got), "size %d: the blob comes back whole", size)

			info, err := c.StatBlob(ctx, res.ID)
			require.NoError(t, err)
			require.Equal(t, BlobInfo{ID: res.ID, Size: int64(size), Stored: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Local: true}, info)
		}
	}
	// No replicas given: the daemon's default.
	_, err := c.PutBlob(ctx, strings.NewReader("x"), 1, 0)
	require.NoError(t, err)
	require.Equal(t, DefaultReplicas, m.puts[len(m.puts)-1].replicas)
}

// The server hands the upload to the backend as it arrives: the backend
// has read the first mebibyte before the caller sends the rest.
func TestBlobPutStreams(t *testing.T) {
	m := newMemBlobs()
	firstMiB := make(chan struct{})
	var once sync.Once
	m.onRead = func(n int64) {
		if n >= 1<<20 {
			once.Do(func() { close(firstMiB) })
		}
	}
	c := NewClient(serve(t, m), token)
	data := randomBytes(t, 4<<20)
	pr, pw := io.Pipe()
	go func() {
		if _, err := pw.Write(data[:1<<20]); err != nil {
			return
		}
		select {
		case <-firstMiB:
			_, _ = pw.Write(data[1<<20:])
			_ = pw.Close()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("the backend did not get the first MiB before the rest was sent: the upload is buffered"))
		}
	}()
	res, err := c.PutBlob(context.Background(), pr, int64(len(data)), 1)
	require.NoError(t, err)
	require.Equal(t, blobID(data), res.ID)
}

func TestBlobRanges(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	data := randomBytes(t, 100)
	res, err := NewClient(addr, token).PutBlob(context.Background(), bytes.NewReader(data), 100, 1)
	require.NoError(t, err)
	path := "/v1/blobs/" + res.ID
	tag := `"` + res.ID + `"`

	for _, tt := range []struct {
		rng, ifRange string
		code         int
		first, last  int // of the body, inclusive
	}{
		{"", "", http.StatusOK, 0, 99},
		{"bytes=0-9", "", http.StatusPartialContent, 0, 9},
		{"bytes=10-10", "", http.StatusPartialContent, 10, 10},
		{"bytes=90-", "", http.StatusPartialContent, 90, 99},
		{"bytes=-10", "", http.StatusPartialContent, 90, 99},
		{"bytes=95-200", "", http.StatusPartialContent, 95, 99},
		{"bytes=-200", "", http.StatusPartialContent, 0, 99},
		{"bytes=0-0,5-6", "", http.StatusOK, 0, 99},
		{"items=0-1", "", http.StatusOK, 0, 99},
		{"bytes=5-9", tag, http.StatusPartialContent, 5, 9},
		{"bytes=5-9", `"other"`, http.StatusOK, 0, 99},
		{"bytes=5-9", "W/" + tag, http.StatusOK, 0, 99},
	} {
		hdr := map[string]string{}
		if tt.rng != "" {
			hdr["Range"] = tt.rng
		}
		if tt.ifRange != "" {
			hdr["If-Range"] = tt.ifRange
		}
		resp, body := blobRequest(t, http.MethodGet, addr, path, hdr, nil)
		require.Equal(t, tt.code, resp.StatusCode, "%q", tt.rng)
		require.Equal(t, data[tt.first:tt.last+1], body, "%q", tt.rng)
		require.Equal(t, strconv.Itoa(tt.last-tt.first+1), resp.Header.Get("Content-Length"), "%q", tt.rng)
		require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
		require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
		require.Equal(t, tag, resp.Header.Get("ETag"))
		if tt.code == http.StatusPartialContent {
			require.Equal(t, fmt.Sprintf("bytes %d-%d/100", tt.first, tt.last), resp.Header.Get("Content-Range"), "%q", tt.rng)
		} else {
			require.Empty(t, resp.Header.Get("Content-Range"), "%q", tt.rng)
		}
	}

	for _, rng := range []string{"bytes=100-", "bytes=100-120", "bytes=-0", "bytes=5-3", "bytes=a-b", "bytes=--1", "bytes=1"} {
		resp, body := blobRequest(t, http.MethodGet, addr, path, map[string]string{"Range": rng}, nil)
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode, rng)
		require.Equal(t, "bytes */100", resp.Header.Get("Content-Range"), rng)
		require.Contains(t, errorMessage(t, body), "cannot be served from blob "+res.ID+" of 100 bytes", rng)
	}
}

// errorMessage is the message of an error answer's JSON body.
func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotEmpty(t, e.Error)
	return e.Error
}

func TestParseBlobRange(t *testing.T) {
	for _, tt := range []struct {
		header  string
		size    int64
		want    byteRange
		partial bool
		err     bool
	}{
		{"", 10, byteRange{0, 10}, false, false},
		{"", 0, byteRange{0, 0}, false, false},
		{"bytes=0-0", 10, byteRange{0, 1}, true, false},
		{"bytes=2-5", 10, byteRange{2, 4}, true, false},
		{"Bytes = 2-5 ", 10, byteRange{2, 4}, true, false},
		{"bytes=2-", 10, byteRange{2, 8}, true, false},
		{"bytes=9-", 10, byteRange{9, 1}, true, false},
		{"bytes=2-99", 10, byteRange{2, 8}, true, false},
		{"bytes=-3", 10, byteRange{7, 3}, true, false},
		{"bytes=-30", 10, byteRange{0, 10}, true, false},
		{"bytes=0-1,3-4", 10, byteRange{0, 10}, false, false},
		{"lines=0-1", 10, byteRange{0, 10}, false, false},
		{"bytes", 10, byteRange{0, 10}, false, false},
		{"bytes=10-", 10, byteRange{}, false, true},
		{"bytes=0-", 0, byteRange{}, false, true},
		{"bytes=-1", 0, byteRange{}, false, true},
		{"bytes=-0", 10, byteRange{}, false, true},
		{"bytes=5-4", 10, byteRange{}, false, true},
		{"bytes=+1-2", 10, byteRange{}, false, true},
		{"bytes=1-+2", 10, byteRange{}, false, true},
		{"bytes=1 -2", 10, byteRange{}, false, true},
		{"bytes=-", 10, byteRange{}, false, true},
		{"bytes=", 10, byteRange{}, false, true},
		{"bytes=99999999999999999999-", 10, byteRange{}, false, true},
		{"bytes=0-99999999999999999999", 10, byteRange{}, false, true},
	} {
		got, partial, err := parseRange(tt.header, tt.size)
		if tt.err {
			require.ErrorIs(t, err, errUnsatisfiable, "%q", tt.header)
			continue
		}
		require.NoError(t, err, "%q", tt.header)
		require.Equal(t, tt.want, got, "%q", tt.header)
		require.Equal(t, tt.partial, partial, "%q", tt.header)
	}
}

func FuzzBlobRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=1-2,4-5", "bytes=9-1", "x=1-2"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			return
		}
		r, partial, err := parseRange(header, size)
		if err != nil {
			return
		}
		if r.off < 0 || r.length < 0 || r.off+r.length > size || r.off+r.length < r.off {
			t.Fatalf("parseRange(%q, %d) = %+v: outside the blob", header, size, r)
		}
		if partial && r.length == 0 {
			t.Fatalf("parseRange(%q, %d): an empty partial range", header, size)
		}
		if !partial && r != (byteRange{0, size}) {
			t.Fatalf("parseRange(%q, %d) = %+v: not partial, not whole", header, size, r)
		}
	})
}

func TestBlobClientRanges(t *testing.T) {
	m := newMemBlobs()
	c := NewClient(serve(t, m), token)
	ctx := context.Background()
	data := randomBytes(t, 100)
	res, err := c.PutBlob(ctx, bytes.NewReader(data), 100, 1)
	require.NoError(t, err)
	for _, tt := range []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{10, 5, data[10:15]},
		{10, -1, data[10:]},
		{0, 5, data[:5]},
		{95, 10, data[95:]},
		{99, 1, data[99:]},
		{0, 0, nil},
		{100, 0, nil},
	} {
		rc, total, err := c.GetBlob(ctx, res.ID, tt.off, tt.length)
		require.NoError(t, err, "%d+%d", tt.off, tt.length)
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.Equal(t, int64(100), total)
		require.Equal(t, string(tt.want), string(got), "%d+%d", tt.off, tt.length)
	}
	var se *StatusError
	for _, r := range [][2]int64{{100, -1}, {100, 1}, {101, 0}} {
		_, _, err = c.GetBlob(ctx, res.ID, r[0], r[1])
		require.ErrorAs(t, err, &se, "%v", r)
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, se.Code, "%v", r)
	}
	for _, r := range [][2]int64{{-1, -1}, {0, -2}, {1, 1<<63 - 1}} {
		_, _, err = c.GetBlob(ctx, res.ID, r[0], r[1])
		require.ErrorContains(t, err, "no such range", "%v", r)
	}
}

func TestBlobHead(t *testing.T) {
	m := newMemBlobs()
	m.remote = []byte("held elsewhere")
	addr := serve(t, m)
	c := NewClient(addr, token)
	ctx := context.Background()
	res, err := c.PutBlob(ctx, strings.NewReader("held here"), 9, 1)
	require.NoError(t, err)

	resp, body := blobRequest(t, http.MethodHead, addr, "/v1/blobs/"+res.ID, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)
	require.Equal(t, "9", resp.Header.Get("Content-Length"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	require.Equal(t, `"`+res.ID+`"`, resp.Header.Get("ETag"))
	require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "true", resp.Header.Get(HeaderBlobLocal))
	require.Equal(t, "2026-01-02T03:04:05Z", resp.Header.Get(HeaderBlobStored))

	resp, body = blobRequest(t, http.MethodHead, addr, "/v1/blobs/"+res.ID, map[string]string{"Range": "bytes=2-"}, nil)
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Empty(t, body)
	require.Equal(t, "7", resp.Header.Get("Content-Length"))
	require.Equal(t, "bytes 2-8/9", resp.Header.Get("Content-Range"))

	remote := blobID(m.remote)
	info, err := c.StatBlob(ctx, remote)
	require.NoError(t, err)
	require.Equal(t, BlobInfo{ID: remote, Size: int64(len(m.remote))}, info, "a remote blob: not local, no time stored")

	// A HEAD answer has no body: the message travels in a header.
	_, err = c.StatBlob(ctx, blobID([]byte("nobody has it")))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	require.Contains(t, se.Message, "no node holds it")
}

func TestBlobListDelete(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	c := NewClient(addr, token)
	ctx := context.Background()

	resp, body := blobRequest(t, http.MethodGet, addr, "/v1/blobs", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `[]`, string(body), "an empty list, not null")

	var ids []string
	for _, s := range []string{"one", "two", "three"} {
		res, err := c.PutBlob(ctx, strings.NewReader(s), int64(len(s)), 1)
		require.NoError(t, err)
		ids = append(ids, res.ID)
	}
	list, err := c.ListBlobs(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for i := 1; i < len(list); i++ {
		require.Less(t, list[i-1].ID, list[i].ID, "sorted by ID")
	}
	_, body = blobRequest(t, http.MethodGet, addr, "/v1/blobs", nil, nil)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	require.Equal(t, map[string]any{"id": list[0].ID, "size": float64(list[0].Size), "stored": "2026-01-02T03:04:05Z", "local": true}, raw[0])

	resp, body = blobRequest(t, http.MethodDelete, addr, "/v1/blobs/"+ids[0], nil, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Empty(t, body)
	err = c.DeleteBlob(ctx, ids[0])
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	require.Contains(t, se.Message, "is not stored here")
	require.NoError(t, c.DeleteBlob(ctx, ids[1]))
	list, err = c.ListBlobs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{ids[2]}, []string{list[0].ID})
}

func TestBlobCheck(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	c := NewClient(addr, token)
	ctx := context.Background()
	res, err := c.PutBlob(ctx, strings.NewReader("sound"), 5, 1)
	require.NoError(t, err)

	resp, body := blobRequest(t, http.MethodPost, addr, "/v1/blobs/"+res.ID+"/check", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"id": "`+res.ID+`", "size": 5, "result": "ok"}`, string(body))

	// The fake's store rots: the bytes under the ID change.
	m.mu.Lock()
	m.blobs[res.ID] = []byte("rotten")
	m.mu.Unlock()
	check, err := c.CheckBlob(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, BlobCheck{ID: res.ID, Size: 6, Result: CheckCorrupt, Problem: "data does not match", MovedTo: "/corrupt/" + res.ID}, check)
	b, err := json.Marshal(check)
	require.NoError(t, err)
	require.JSONEq(t, `{"id": "`+res.ID+`", "size": 6, "result": "corrupt", "problem": "data does not match", "moved_to": "/corrupt/`+res.ID+`"}`, string(b))

	_, err = c.CheckBlob(ctx, res.ID)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	require.Contains(t, se.Message, "is not stored on this node")
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		code, _ := do(t, method, addr, "/v1/blobs/"+res.ID+"/check", "Bearer "+token, "")
		require.Equal(t, http.StatusMethodNotAllowed, code, method)
	}
}

func TestBlobJSONFieldNames(t *testing.T) {
	b, err := json.Marshal(BlobInfo{ID: "x", Size: 3})
	require.NoError(t, err)
	require.JSONEq(t, `{"id": "x", "size": 3, "local": false}`, string(b), "a remote blob has no stored time")
	b, err = json.Marshal(PutResult{ID: "x", Size: 3, Holders: []string{"a"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"id": "x", "size": 3, "holders": ["a"]}`, string(b))
}

// Every mark gets its status on every route that can meet it.
func TestBlobErrorStatuses(t *testing.T) {
	id := blobID([]byte("x"))
	for _, tt := range []struct {
		mark error
		code int
	}{
		{ErrBadRequest, http.StatusBadRequest},
		{ErrNotFound, http.StatusNotFound},
		{ErrTooLarge, http.StatusRequestEntityTooLarge},
		{ErrInsufficientStorage, http.StatusInsufficientStorage},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{ErrBadGateway, http.StatusBadGateway},
		{nil, http.StatusInternalServerError},
	} {
		m := newMemBlobs()
		m.err = errors.New("the store says no")
		if tt.mark != nil {
			m.err = Mark(m.err, tt.mark)
		}
		addr := serve(t, m)
		for _, r := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/blobs", "data"},
			{http.MethodGet, "/v1/blobs/" + id, ""},
			{http.MethodGet, "/v1/blobs", ""},
			{http.MethodDelete, "/v1/blobs/" + id, ""},
			{http.MethodPost, "/v1/blobs/" + id + "/check", ""},
		} {
			code, body := do(t, r.method, addr, r.path, "Bearer "+token, r.body)
			require.Equal(t, tt.code, code, "%v: %s %s", tt.mark, r.method, r.path)
			require.Equal(t, "the store says no", errorMessage(t, []byte(body)))
		}
		_, err := NewClient(addr, token).StatBlob(context.Background(), id)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, tt.code, se.Code)
		require.Equal(t, "the store says no", se.Message)
	}

	// The backend's own checks: a malformed ID, an unknown blob.
	addr := serve(t, newMemBlobs())
	code, body := get(t, addr, "/v1/blobs/bafkr4inot-hex", "Bearer "+token)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, errorMessage(t, []byte(body)), "malformed")
	code, body = get(t, addr, "/v1/blobs/"+id, "Bearer "+token)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, errorMessage(t, []byte(body)), "no node holds it")
}

func TestBlobTooLarge(t *testing.T) {
	m := newMemBlobs()
	m.maxSize = 1000
	c := NewClient(serve(t, m), token)
	for _, size := range []int64{4000, -1} {
		_, err := c.PutBlob(context.Background(), bytes.NewReader(make([]byte, 4000)), size, 1)
		var se *StatusError
		require.ErrorAs(t, err, &se, "size %d", size)
		require.Equal(t, http.StatusRequestEntityTooLarge, se.Code)
		require.Contains(t, se.Message, "over the maximum size")
	}
	require.Empty(t, m.blobs)
}

func TestBlobReplicas(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	for _, q := range []string{"?replicas=0", "?replicas=17", "?replicas=-1", "?replicas=two", "?replicas=1&replicas=2", "?copies=2", "?replicas=%zz"} {
		code, body := do(t, http.MethodPost, addr, "/v1/blobs"+q, "Bearer "+token, "data")
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, errorMessage(t, []byte(body)), "replicas", q)
	}
	require.Empty(t, m.puts, "a bad replica count stores nothing")
	for _, tt := range []struct {
		q    string
		want int
	}{{"", 1}, {"?replicas=1", 1}, {"?replicas=16", 16}} {
		code, body := do(t, http.MethodPost, addr, "/v1/blobs"+tt.q, "Bearer "+token, "data")
		require.Equal(t, http.StatusCreated, code, body)
		require.Equal(t, tt.want, m.puts[len(m.puts)-1].replicas, tt.q)
		var res PutResult
		require.NoError(t, json.Unmarshal([]byte(body), &res))
		require.Len(t, res.Holders, tt.want)
	}
	_, err := NewClient(addr, token).PutBlob(context.Background(), strings.NewReader("x"), 1, MaxReplicas+1)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)
	require.Contains(t, se.Message, "replicas 17: want an integer from 1 to 16")
}

func TestBlobNotImplemented(t *testing.T) {
	addr := serve(t, fakeBackend{})
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/v1/blobs"},
		{http.MethodGet, "/v1/blobs"},
		{http.MethodGet, "/v1/blobs/abc"},
		{http.MethodDelete, "/v1/blobs/abc"},
		{http.MethodPost, "/v1/blobs/abc/check"},
	} {
		code, body := do(t, r.method, addr, r.path, "Bearer "+token, "data")
		require.Equal(t, http.StatusNotImplemented, code, "%s %s", r.method, r.path)
		require.Contains(t, errorMessage(t, []byte(body)), "does not store blobs", "%s %s", r.method, r.path)
	}
	_, err := NewClient(addr, token).StatBlob(context.Background(), "abc")
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotImplemented, se.Code)
	require.Contains(t, se.Message, "does not store blobs")
}

func TestBlobRoutesNeedTheToken(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	id := blobID([]byte("x"))
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
		for _, path := range []string{"/v1/blobs", "/v1/blobs/" + id, "/v1/blobs?replicas=2", "/v1/blobs/" + id + "/check"} {
			for _, auth := range []string{"", "Bearer wrong", token} {
				code, _ := do(t, method, addr, path, auth, "data")
				require.Equal(t, http.StatusUnauthorized, code, "%s %s with %q", method, path, auth)
			}
		}
	}
	require.Empty(t, m.puts, "nothing stored without the token")
	_, err := NewClient(addr, "wrong").PutBlob(context.Background(), strings.NewReader("x"), 1, 1)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
}

// A failure once the headers are out aborts the response: the caller sees
// a broken transfer, never short data passing for the blob.
func TestBlobMidStreamFailureAborts(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	c := NewClient(addr, token)
	ctx := context.Background()
	data := randomBytes(t, 3<<20)
	res, err := c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), 1)
	require.NoError(t, err)
	m.breakAfter = 1 << 20
	m.breakErr = Mark(errors.New("holder sent bytes that do not match the blob"), ErrBadGateway)

	rc, total, err := c.GetBlob(ctx, res.ID, 0, -1)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), total)
	got, err := io.ReadAll(rc)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "the transfer broke off after")
	require.Less(t, len(got), len(data))
	require.NoError(t, rc.Close())

	// A plain HTTP client sees it too.
	resp, err := http.DefaultClient.Do(authorized(t, http.MethodGet, addr, "/v1/blobs/"+res.ID))
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err)
	resp.Body.Close()

	// A range that breaks off as well.
	rc, _, err = c.GetBlob(ctx, res.ID, 1000, 2<<20)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	rc.Close()

	// A blob that ends early without an error is no better.
	m.breakErr = io.EOF
	rc, _, err = c.GetBlob(ctx, res.ID, 0, -1)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	rc.Close()

	// A failure before the first byte still gets its status.
	m.failFirst = true
	m.breakErr = Mark(errors.New("no holder answers"), ErrUnavailable)
	_, _, err = c.GetBlob(ctx, res.ID, 0, -1)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
	require.Equal(t, "no holder answers", se.Message)
}

func authorized(t *testing.T, method, addr, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// An upload that breaks off before its Content-Length is the caller's
// fault: 400, and nothing stored.
func TestBlobUploadBrokenOff(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n0123456789", token)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, errorMessage(t, body), "the upload broke off after 10 bytes")
	require.Empty(t, m.blobs)
}

// Uploads are exempt from the cap on request bodies; other requests are
// not.
func TestBlobUploadBeyondBodyCap(t *testing.T) {
	m := newMemBlobs()
	addr := serve(t, m)
	big := strings.Repeat("a", 4*maxBodyBytes)
	code, body := do(t, http.MethodPost, addr, "/v1/blobs", "Bearer "+token, big)
	require.Equal(t, http.StatusCreated, code, body)
	code, _ = do(t, http.MethodPost, addr, "/v1/connect", "Bearer "+token, `{"addr": "`+big+`"}`)
	require.Equal(t, http.StatusBadRequest, code)
}

// An overall timeout of the client's does not cut blob transfers: only
// their context does.
func TestBlobTransfersIgnoreClientTimeout(t *testing.T) {
	m := newMemBlobs()
	c := NewClient(serve(t, m), token)
	c.http = &http.Client{Timeout: time.Nanosecond}
	ctx := context.Background()
	_, err := c.ID(ctx)
	require.Error(t, err, "the timeout cuts ordinary calls")

	data := randomBytes(t, 1<<20)
	res, err := c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), 1)
	require.NoError(t, err)
	rc, _, err := c.GetBlob(ctx, res.ID, 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, data, got)
	_, err = c.StatBlob(ctx, res.ID)
	require.NoError(t, err)
	require.NoError(t, c.DeleteBlob(ctx, res.ID))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.PutBlob(cctx, bytes.NewReader(data), int64(len(data)), 1)
	require.ErrorIs(t, err, context.Canceled, "the context does cut it")
}

func TestBlobNoDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c := NewClient(addr, token)
	_, err = c.PutBlob(context.Background(), strings.NewReader("x"), 1, 1)
	require.ErrorIs(t, err, ErrNoDaemon)
	_, _, err = c.GetBlob(context.Background(), "x", 0, -1)
	require.ErrorIs(t, err, ErrNoDaemon)
}
