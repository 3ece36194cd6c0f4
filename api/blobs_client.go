package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxErrorBytes caps what the client reads of an error answer to a blob
// request.
const maxErrorBytes = 64 << 10

// PutBlob uploads r, streamed, and has the daemon store it on replicas
// nodes, itself first; 0 means the daemon's default (DefaultReplicas). size
// is r's length, or -1 when unknown (the upload is then chunked); with a
// known size, r must hold exactly that many bytes. Only ctx bounds the
// transfer.
func (c *Client) PutBlob(ctx context.Context, r io.Reader, size int64, replicas int) (PutResult, error) {
	path := blobsPath
	if replicas != 0 {
		path += "?" + url.Values{BlobParamReplicas: {strconv.Itoa(replicas)}}.Encode()
	}
	body := io.NopCloser(r) // the caller closes r, not the transport
	if size == 0 {
		body = http.NoBody
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := c.send(ctx, http.MethodPost, path, body, size, hdr, http.StatusCreated)
	if err != nil {
		return PutResult{}, err
	}
	defer resp.Body.Close()
	var out PutResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&out); err != nil {
		return PutResult{}, fmt.Errorf("POST %s: decode answer: %w", path, err)
	}
	return out, nil
}

// GetBlob streams the blob id, or length bytes of it from off (length -1:
// to the end), and returns it with the blob's total size. The reader fails
// with an error wrapping io.ErrUnexpectedEOF when the transfer breaks off
// before its end: it never passes short data off as the whole. Only ctx
// bounds the transfer; cancelling it aborts the reads. A range starting
// past the end is a *StatusError with code 416.
func (c *Client) GetBlob(ctx context.Context, id string, off, length int64) (io.ReadCloser, int64, error) {
	if off < 0 || length < -1 || (length > 0 && length > math.MaxInt64-off) {
		return nil, 0, fmt.Errorf("get blob %s: no such range: offset %d, length %d", id, off, length)
	}
	if length == 0 {
		info, err := c.StatBlob(ctx, id)
		if err == nil && off > info.Size {
			err = &StatusError{Code: http.StatusRequestedRangeNotSatisfiable,
				Message: fmt.Sprintf("offset %d is past the end of blob %s of %d bytes", off, id, info.Size)}
		}
		return http.NoBody, info.Size, err
	}
	path := blobsPath + "/" + url.PathEscape(id)
	hdr := http.Header{}
	ranged := off > 0 || length > 0
	if ranged {
		last := ""
		if length > 0 {
			last = strconv.FormatInt(off+length-1, 10)
		}
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%s", off, last))
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, 0, hdr, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, 0, err
	}
	n, total, err := answeredRange(resp, ranged, off, length)
	if err != nil {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	return &exactBody{rc: resp.Body, id: id, want: n, left: n}, total, nil
}

// answeredRange checks that resp holds the range asked for and returns its
// length and the blob's total size.
func answeredRange(resp *http.Response, ranged bool, off, length int64) (n, total int64, err error) {
	if resp.StatusCode == http.StatusOK {
		if ranged {
			return 0, 0, errors.New("the daemon answered with the whole blob, not the range asked for")
		}
		if resp.ContentLength < 0 {
			return 0, 0, errors.New("the answer has no Content-Length")
		}
		return resp.ContentLength, resp.ContentLength, nil
	}
	cr := resp.Header.Get("Content-Range")
	var first, last int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &total); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q: %w", cr, err)
	}
	wantLast := total - 1
	if length > 0 {
		wantLast = min(off+length-1, total-1)
	}
	if first != off || last != wantLast || resp.ContentLength != last-first+1 {
		return 0, 0, fmt.Errorf("the daemon answered with bytes %d-%d/%d (Content-Length %d), not the range asked for", first, last, total, resp.ContentLength)
	}
	return resp.ContentLength, total, nil
}

// exactBody is a blob answer's body: it ends after exactly want bytes, and
// reports a transfer that breaks off before.
type exactBody struct {
	rc         io.ReadCloser
	id         string
	want, left int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	switch {
	case err == nil, b.left == 0 && errors.Is(err, io.EOF):
		return n, err
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("blob %s: the transfer broke off after %d of %d bytes: %w", b.id, b.want-b.left, b.want, err)
}

func (b *exactBody) Close() error { return b.rc.Close() }

// StatBlob describes the blob id, local or in the network, without
// transferring it.
func (c *Client) StatBlob(ctx context.Context, id string) (BlobInfo, error) {
	resp, err := c.send(ctx, http.MethodHead, blobsPath+"/"+url.PathEscape(id), nil, 0, nil, http.StatusOK)
	if err != nil {
		return BlobInfo{}, err
	}
	resp.Body.Close()
	info := BlobInfo{ID: id, Size: resp.ContentLength, Local: resp.Header.Get(HeaderBlobLocal) == "true"}
	if tag := resp.Header.Get("ETag"); len(tag) > 2 && strings.HasPrefix(tag, `"`) && strings.HasSuffix(tag, `"`) {
		info.ID = tag[1 : len(tag)-1]
	}
	if s := resp.Header.Get(HeaderBlobStored); s != "" {
		if info.Stored, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return BlobInfo{}, fmt.Errorf("HEAD blob %s: bad %s %q: %w", id, HeaderBlobStored, s, err)
		}
	}
	return info, nil
}

// ListBlobs returns the blobs the daemon holds, by ID.
func (c *Client) ListBlobs(ctx context.Context) ([]BlobInfo, error) {
	var out []BlobInfo
	return out, c.do(ctx, http.MethodGet, blobsPath, nil, &out)
}

// DeleteBlob removes the daemon's local copy of the blob id; other nodes
// keep theirs. A blob the daemon does not hold is a *StatusError with code
// 404.
func (c *Client) DeleteBlob(ctx context.Context, id string) error {
	resp, err := c.send(ctx, http.MethodDelete, blobsPath+"/"+url.PathEscape(id), nil, 0, nil, http.StatusNoContent)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// CheckBlob has the daemon hash its local copy of blob id again and
// compare it with the ID (see BlobCheck). It takes as long as reading the
// blob from disk: only ctx bounds it. A blob the daemon does not hold is a
// *StatusError with code 404.
func (c *Client) CheckBlob(ctx context.Context, id string) (BlobCheck, error) {
	resp, err := c.send(ctx, http.MethodPost, blobsPath+"/"+url.PathEscape(id)+"/check", nil, 0, nil, http.StatusOK)
	if err != nil {
		return BlobCheck{}, err
	}
	defer resp.Body.Close()
	var res BlobCheck
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return BlobCheck{}, fmt.Errorf("check blob %s: reading the answer: %w", id, err)
	}
	return res, nil
}

// send sends a request with body (nil for none) of size bytes (-1 when
// unknown) and returns the answer if its status is one of want; any other
// becomes a *StatusError. Unlike do, it leaves the body to the caller, and
// no overall timeout of the client cuts it: only ctx bounds it.
func (c *Client) send(ctx context.Context, method, path string, body io.ReadCloser, size int64, hdr http.Header, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Body, req.ContentLength = body, size
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (nothing answers at %s)", ErrNoDaemon, c.base)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for _, code := range want {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readStatusError(resp)
}

// readStatusError turns an error answer into a *StatusError: the message of
// its JSON body, or of HeaderError for a HEAD answer.
func readStatusError(resp *http.Response) error {
	msg := resp.Header.Get(HeaderError)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var e errorBody
	switch {
	case json.Unmarshal(b, &e) == nil && e.Error != "":
		msg = e.Error
	case msg == "" && len(bytes.TrimSpace(b)) > 0:
		msg = string(bytes.TrimSpace(b))
	case msg == "":
		msg = "no message"
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}
