package store

import (
	"fmt"
	"math"
)

// Defaults of Options.
const (
	// DefaultMaxBlobSize bounds one blob: a peer cannot make a node spend
	// more than this on one transfer.
	DefaultMaxBlobSize = 8 << 30
	// DefaultMinFreeFraction keeps a tenth of the disk free: a full disk
	// breaks the rest of the node (logs, the trust store, the member table)
	// and is slow to recover.
	DefaultMinFreeFraction = 0.10
)

// Options of a Store. The zero value is usable: it takes the defaults.
type Options struct {
	// MaxBlobSize is the largest blob accepted (ErrTooLarge above it).
	// 0 means DefaultMaxBlobSize.
	MaxBlobSize int64
	// Quota is the most bytes of blob data the store holds (ErrQuota
	// beyond it); outboards (1/256 of the data) do not count. 0 means no
	// byte quota, only the disk rule below.
	Quota int64
	// MinFreeFraction is the share of the filesystem a write must leave
	// free (ErrQuota otherwise): the default 0.10 never fills the disk past
	// 90 %. 0 means DefaultMinFreeFraction; a negative value turns the rule
	// off (tests).
	MinFreeFraction float64
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.MaxBlobSize == 0 {
		o.MaxBlobSize = DefaultMaxBlobSize
	}
	if o.MinFreeFraction == 0 {
		o.MinFreeFraction = DefaultMinFreeFraction
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.MaxBlobSize < 0 || o.MaxBlobSize > maxTreeSize:
		return fmt.Errorf("MaxBlobSize %d: want 0 (default) up to %d", o.MaxBlobSize, int64(maxTreeSize))
	case o.Quota < 0:
		return fmt.Errorf("Quota %d: want 0 (none) or more", o.Quota)
	case math.IsNaN(o.MinFreeFraction) || o.MinFreeFraction >= 1:
		return fmt.Errorf("MinFreeFraction %v: want less than 1 (negative: no disk rule)", o.MinFreeFraction)
	}
	return nil
}
