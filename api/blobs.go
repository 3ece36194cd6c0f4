package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// BlobInfo describes a blob: an entry of GET /v1/blobs, or what HEAD
// /v1/blobs/{id} tells.
type BlobInfo struct {
	// ID is the blob's CIDv1 (bafkr4i...).
	ID   string `json:"id"`
	Size int64  `json:"size"`
	// Stored is when the blob was stored locally; absent for a remote
	// blob.
	Stored time.Time `json:"stored,omitzero"`
	// Local is whether this node holds a copy.
	Local bool `json:"local"`
}

// PutResult is the answer to POST /v1/blobs.
type PutResult struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	// Holders are the IDs of the nodes holding a copy, this node first;
	// never null.
	Holders []string `json:"holders"`
}

// Blob is an opened blob: its size is known; ranges stream verified bytes.
type Blob interface {
	Info() BlobInfo
	// Range streams bytes [off, off+length), already validated against
	// the size (length > 0). A read error is the backend's, marked like
	// Blobs' errors when it knows why.
	Range(ctx context.Context, off, length int64) (io.ReadCloser, error)
}

// Blobs is what the API serves on /v1/blobs. It is separate from Backend:
// a backend without it answers 501 on the blob routes.
//
// Errors marked ErrBadRequest (a malformed ID), ErrNotFound (no such blob),
// ErrTooLarge (over the maximum blob size), ErrInsufficientStorage (quota
// or disk full), ErrUnavailable (no holder reachable) or ErrBadGateway (a
// peer sent bad data) get their own status (see errorStatus); others answer
// 500.
type Blobs interface {
	// PutBlob stores r (size bytes, or -1 if unknown) locally and on
	// replicas-1 other nodes (replicas already validated).
	PutBlob(ctx context.Context, r io.Reader, size int64, replicas int) (PutResult, error)
	// OpenBlob finds a blob locally or in the network.
	OpenBlob(ctx context.Context, id string) (Blob, error)
	// ListBlobs lists the local blobs, in any order: the server sorts
	// them by ID.
	ListBlobs() ([]BlobInfo, error)
	// DeleteBlob removes the local copy only; ErrNotFound when there is
	// none.
	DeleteBlob(id string) error
	// CheckBlob hashes the local copy again and compares it with its ID,
	// repairing what it can (see BlobCheck); ErrNotFound when there is
	// none.
	CheckBlob(ctx context.Context, id string) (BlobCheck, error)
}

// Results of POST /v1/blobs/{id}/check.
const (
	// CheckOK: the local copy matches its ID.
	CheckOK = "ok"
	// CheckRepaired: the data matches its ID; the index that lets the
	// node serve verified ranges of it (its outboard) was missing or
	// damaged and has been rebuilt from the data.
	CheckRepaired = "repaired"
	// CheckCorrupt: the data no longer matches its ID. The node no longer
	// holds, serves or counts it; the bytes were moved to MovedTo, not
	// deleted.
	CheckCorrupt = "corrupt"
)

// BlobCheck is the answer to POST /v1/blobs/{id}/check.
type BlobCheck struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	// Result is CheckOK, CheckRepaired or CheckCorrupt.
	Result string `json:"result"`
	// Problem says what did not match, unless Result is CheckOK.
	Problem string `json:"problem,omitempty"`
	// MovedTo is where a corrupt blob's bytes are kept now, on the
	// daemon's machine.
	MovedTo string `json:"moved_to,omitempty"`
}

// ErrTooLarge marks a Backend error about a blob over the maximum blob
// size; the server answers 413.
var ErrTooLarge = errors.New("too large")

// ErrInsufficientStorage marks a Backend error about a full quota or disk;
// the server answers 507.
var ErrInsufficientStorage = errors.New("insufficient storage")

// ErrUnavailable marks a Backend error about a blob no reachable node holds
// (holders known but down, or too few nodes for the replicas); the server
// answers 503.
var ErrUnavailable = errors.New("unavailable")

// ErrBadGateway marks a Backend error caused by another node (it sent bad
// data, or broke off); the server answers 502.
var ErrBadGateway = errors.New("bad gateway")

// errorStatus is the HTTP status of a Backend error by its mark, fallback
// for an unmarked one.
func errorStatus(err error, fallback int) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInsufficientStorage):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrBadGateway):
		return http.StatusBadGateway
	}
	return fallback
}

// Bounds of POST /v1/blobs?replicas=K.
const (
	// BlobParamReplicas is the query parameter with the number of copies.
	BlobParamReplicas = "replicas"
	// DefaultReplicas keeps the only copy on this node.
	DefaultReplicas = 1
	// MaxReplicas caps the copies of one put: each is a full transfer
	// from this node, made while the request is held open.
	MaxReplicas = 16
)

// Headers of GET and HEAD /v1/blobs/{id} besides the standard ones.
const (
	// HeaderBlobLocal is "true" when this node holds a copy, else
	// "false".
	HeaderBlobLocal = "Peernode-Blob-Local"
	// HeaderBlobStored is when the local copy was stored, in RFC 3339;
	// absent for a remote blob.
	HeaderBlobStored = "Peernode-Blob-Stored"
	// HeaderError carries the error message of a HEAD answer, which has
	// no body.
	HeaderError = "Peernode-Error"
)

// ValidateReplicas checks a replica count.
func ValidateReplicas(n int) error {
	if n < 1 || n > MaxReplicas {
		return fmt.Errorf("replicas %d: want an integer from 1 to %d", n, MaxReplicas)
	}
	return nil
}

// ParsePutQuery reads POST /v1/blobs's query: replicas at most once
// (DefaultReplicas when absent), nothing else.
func ParsePutQuery(rawQuery string) (int, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, fmt.Errorf("put query %q: %w", rawQuery, err)
	}
	for k := range q {
		if k != BlobParamReplicas {
			return 0, fmt.Errorf("unknown put parameter %q: want %s", k, BlobParamReplicas)
		}
	}
	vs, ok := q[BlobParamReplicas]
	switch {
	case !ok:
		return DefaultReplicas, nil
	case len(vs) != 1:
		return 0, fmt.Errorf("put parameter %s given %d times: give it once", BlobParamReplicas, len(vs))
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil {
		return 0, fmt.Errorf("replicas %s: want an integer from 1 to %d", vs[0], MaxReplicas)
	}
	return n, ValidateReplicas(n)
}
