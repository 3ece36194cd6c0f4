package api

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// blobsPath is the collection of blobs: POST uploads one, GET lists them.
const blobsPath = "/v1/blobs"

// firstChunkBytes is how much of a blob the server reads before it sends
// the headers, so a holder that fails at once still gets a proper status.
const firstChunkBytes = 32 << 10

// msgNoBlobs answers the blob routes of a backend without blob storage.
const msgNoBlobs = "this daemon does not store blobs: its node was built without blob storage; " +
	"run a peernode version that has it (peernode version shows the daemon's)"

// isBlobUpload reports whether r uploads a blob: its body is a file,
// streamed to the backend, not a small JSON object.
func isBlobUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == blobsPath
}

// blobsOf returns the backend's blob storage; without one it answers 501
// and returns false.
func (s *Server) blobsOf(w http.ResponseWriter, r *http.Request) (Blobs, bool) {
	b, ok := s.backend.(Blobs)
	if !ok {
		blobError(w, r, http.StatusNotImplemented, msgNoBlobs)
	}
	return b, ok
}

// blobError writes an error answer; a HEAD answer has no body, so it also
// carries the message in HeaderError.
func blobError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.Method == http.MethodHead {
		w.Header().Set(HeaderError, headerSafe(msg))
	}
	writeError(w, code, msg)
}

// backendError answers a Backend error with the status of its mark, or
// fallback.
func backendError(w http.ResponseWriter, r *http.Request, err error, fallback int) {
	code := errorStatus(err, fallback)
	log.Debugw("blob request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	blobError(w, r, code, err.Error())
}

// headerSafe replaces what a header value cannot hold.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// countReader counts the bytes read through it and keeps the error that
// broke the reading off, if any: a blob upload's body, as the backend reads
// it, or a blob range, as the server sends it.
type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (u *countReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		u.err = err
	}
	return n, err
}

// handlePutBlob streams the request's body to the backend: the size is the
// Content-Length, -1 for a chunked upload.
func (s *Server) handlePutBlob(w http.ResponseWriter, r *http.Request) {
	blobs, ok := s.blobsOf(w, r)
	if !ok {
		return
	}
	replicas, err := ParsePutQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	body := &countReader{r: r.Body}
	res, err := blobs.PutBlob(r.Context(), body, r.ContentLength, replicas)
	if err != nil {
		code := errorStatus(err, 0)
		switch {
		case code != 0:
			backendError(w, r, err, code)
		case body.err != nil:
			// The caller's upload broke off (or was shorter than its
			// Content-Length): its fault, not the backend's.
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the upload broke off after %d bytes (%v): send the file again", body.n, body.err))
		default:
			backendError(w, r, err, http.StatusInternalServerError)
		}
		return
	}
	if res.Holders == nil {
		res.Holders = []string{}
	}
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) handleListBlobs(w http.ResponseWriter, r *http.Request) {
	blobs, ok := s.blobsOf(w, r)
	if !ok {
		return
	}
	list, err := blobs.ListBlobs()
	if err != nil {
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	if list == nil {
		list = []BlobInfo{}
	}
	slices.SortFunc(list, func(a, b BlobInfo) int { return cmp.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleDeleteBlob(w http.ResponseWriter, r *http.Request) {
	blobs, ok := s.blobsOf(w, r)
	if !ok {
		return
	}
	if err := blobs.DeleteBlob(r.PathValue("id")); err != nil {
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleCheckBlob answers POST /v1/blobs/{id}/check: the local copy hashed
// again, repaired or moved out if need be. It takes as long as reading the
// blob from disk; a caller that hangs up stops it.
func (s *Server) handleCheckBlob(w http.ResponseWriter, r *http.Request) {
	blobs, ok := s.blobsOf(w, r)
	if !ok {
		return
	}
	res, err := blobs.CheckBlob(r.Context(), r.PathValue("id"))
	if err != nil {
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// etag is a blob's entity tag: its ID, which names its content.
func etag(id string) string { return `"` + id + `"` }

// handleGetBlob answers GET and HEAD /v1/blobs/{id}: the whole blob, or one
// range of it (206). Once the headers are out, a failure aborts the
// response, so the caller sees a truncated transfer, never short data.
func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request) {
	blobs, ok := s.blobsOf(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	blob, err := blobs.OpenBlob(r.Context(), id)
	if err != nil {
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	info := blob.Info()
	if info.ID == "" {
		info.ID = id
	}
	tag := etag(info.ID)
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", tag)
	h.Set(HeaderBlobLocal, strconv.FormatBool(info.Local))
	if !info.Stored.IsZero() {
		h.Set(HeaderBlobStored, info.Stored.UTC().Format(time.RFC3339Nano))
	}
	rng, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if ir := r.Header.Get("If-Range"); ir != "" && ir != tag {
		// The caller's copy is of other content: it gets the whole blob.
		rng, partial, err = byteRange{0, info.Size}, false, nil
	}
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		blobError(w, r, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("range %q cannot be served from blob %s of %d bytes: "+
			"ask for one range within it, as bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX", r.Header.Get("Range"), info.ID, info.Size))
		return
	}
	code := http.StatusOK
	if partial {
		code = http.StatusPartialContent
		h.Set("Content-Range", rng.contentRange(info.Size))
	}
	if r.Method == http.MethodHead || rng.length == 0 {
		writeBlobHeaders(w, code, rng.length)
		return
	}
	s.streamBlob(w, r, blob, info.ID, code, rng)
}

// writeBlobHeaders sends the headers of a blob answer of length bytes.
func writeBlobHeaders(w http.ResponseWriter, code int, length int64) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(code)
}

// streamBlob sends rng of blob. It reads the first chunk before the
// headers, so a blob that cannot be read at all gets an error status; a
// failure after that aborts the response.
func (s *Server) streamBlob(w http.ResponseWriter, r *http.Request, blob Blob, id string, code int, rng byteRange) {
	rc, err := blob.Range(r.Context(), rng.off, rng.length)
	if err != nil {
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	src := &countReader{r: io.LimitReader(rc, rng.length)}
	first := make([]byte, min(firstChunkBytes, rng.length))
	n, err := io.ReadAtLeast(src, first, 1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("blob %s ended before its first byte: %w", id, io.ErrUnexpectedEOF)
		}
		backendError(w, r, err, http.StatusInternalServerError)
		return
	}
	writeBlobHeaders(w, code, rng.length)
	sent, err := w.Write(first[:n])
	if err == nil {
		var m int64
		m, err = io.Copy(w, src)
		sent += int(m)
	}
	if int64(sent) == rng.length {
		return
	}
	switch {
	case src.err != nil:
		log.Debugw("blob transfer broke off", "blob", id, "bytes", sent, "err", src.err)
	case err != nil: // the caller went away
		log.Debugw("blob transfer broke off", "blob", id, "bytes", sent, "err", err)
	default:
		log.Debugw("blob transfer broke off: the blob ended early", "blob", id, "bytes", sent)
	}
	panic(http.ErrAbortHandler)
}
