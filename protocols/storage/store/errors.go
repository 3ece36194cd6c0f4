package store

import "errors"

// Errors of the store. Functions wrap them with what was attempted; test
// with errors.Is.
var (
	ErrNotFound = errors.New("blob not found")
	ErrTooLarge = errors.New("blob too large")
	// ErrQuota is the byte quota, and also a disk that a write would fill
	// past Options.MinFreeFraction or that ran out of space (ENOSPC,
	// EDQUOT) during the write.
	ErrQuota    = errors.New("storage quota exceeded")
	ErrBadData  = errors.New("data does not match the blob ID")
	ErrBadID    = errors.New("not a peernode blob ID")
	ErrBadRange = errors.New("byte range outside the blob")
	// ErrClosed is returned by calls on a closed Store.
	ErrClosed = errors.New("store closed")
)
