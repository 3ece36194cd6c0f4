package storage

import (
	"context"
	"errors"
	"fmt"
	"os"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

// Errors a client gets besides the store's own (store.ErrNotFound,
// ErrTooLarge, ErrQuota, ErrBadData), which a peer's answer maps to.
var (
	// ErrBusy: the peer serves too many transfers at once.
	ErrBusy = errors.New("peer is busy")
	// ErrRefused: the peer stores nothing for others (role client).
	ErrRefused = errors.New("peer does not store blobs for others")
	// ErrRemote: the peer failed on its side.
	ErrRemote = errors.New("peer failed")
	// ErrStalled: no data moved within the idle timeout.
	ErrStalled = errors.New("transfer stalled")
)

// RemoteError is a peer's answer to a request that failed. errors.Is
// matches it against the error its code stands for.
type RemoteError struct {
	Code    pb.Code
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("peer answered %s: %s", e.Code, e.Message)
}

// Unwrap returns the error the code stands for.
func (e *RemoteError) Unwrap() error { return codeError(e.Code) }

func codeError(c pb.Code) error {
	switch c {
	case pb.Code_NOT_FOUND:
		return store.ErrNotFound
	case pb.Code_TOO_LARGE:
		return store.ErrTooLarge
	case pb.Code_QUOTA:
		return store.ErrQuota
	case pb.Code_BAD_DATA:
		return store.ErrBadData
	case pb.Code_BUSY:
		return ErrBusy
	case pb.Code_MALFORMED:
		return ErrMalformed
	case pb.Code_REFUSED:
		return ErrRefused
	}
	return ErrRemote
}

// codeOf maps a local failure to the code told to the peer, and a message
// that does not reveal local paths.
func codeOf(err error) (pb.Code, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return pb.Code_NOT_FOUND, "blob not held here"
	case errors.Is(err, store.ErrTooLarge):
		return pb.Code_TOO_LARGE, err.Error()
	case errors.Is(err, store.ErrQuota):
		return pb.Code_QUOTA, err.Error()
	case errors.Is(err, store.ErrBadData):
		return pb.Code_BAD_DATA, err.Error()
	case errors.Is(err, store.ErrBadRange), errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLargeHeader):
		return pb.Code_MALFORMED, err.Error()
	case errors.Is(err, ErrBusy):
		return pb.Code_BUSY, "too many transfers; try another holder or later"
	case errors.Is(err, ErrRefused):
		return pb.Code_REFUSED, "this node is a client and stores nothing for others"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pb.Code_INTERNAL, "storage error on the peer: " + pe.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return pb.Code_INTERNAL, "transfer timed out on the peer"
	}
	return pb.Code_INTERNAL, "the peer failed to serve the request"
}
