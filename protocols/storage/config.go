package storage

import (
	"fmt"
	"time"
)

// Config paces and bounds the storage protocol, on both sides.
type Config struct {
	// AcceptPuts is false on a node of role client: it stores nothing for
	// others and answers puts with REFUSED.
	AcceptPuts bool
	// MaxTransfers caps the puts and gets served at once; more are
	// answered BUSY so the client goes to another holder. Default 16.
	MaxTransfers int
	// RequestTimeout bounds a request apart from its data: headers, has,
	// stat. A transfer gets RequestTimeout plus its encoded size at
	// MinRate. Default 30 s.
	RequestTimeout time.Duration
	// MinRate is the slowest transfer rate a deadline allows for, in bytes
	// per second. Default 1 MiB/s: 8 GiB get about 2 h 17 min.
	MinRate int64
	// IdleTimeout drops a transfer that moves no data for this long, well
	// before its overall deadline: a peer that stalls is caught quickly and
	// the client fails over. Default 15 s.
	IdleTimeout time.Duration
	// HedgeAfter is how long a reader waits for a holder's answer before
	// it asks the next holder too, taking whichever answers first. Default
	// 1 s: far above a healthy answer's round trip and disk read.
	HedgeAfter time.Duration
}

// Defaults.
const (
	DefaultMaxTransfers   = 16
	DefaultRequestTimeout = 30 * time.Second
	DefaultMinRate        = 1 << 20
	DefaultIdleTimeout    = 15 * time.Second
	DefaultHedgeAfter     = time.Second
)

// DefaultConfig returns the defaults, for a node that stores for others.
func DefaultConfig() Config {
	return Config{
		AcceptPuts: true, MaxTransfers: DefaultMaxTransfers, RequestTimeout: DefaultRequestTimeout,
		MinRate: DefaultMinRate, IdleTimeout: DefaultIdleTimeout, HedgeAfter: DefaultHedgeAfter,
	}
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxTransfers < 1:
		return fmt.Errorf("storage max transfers %d: want at least 1", c.MaxTransfers)
	case c.RequestTimeout <= 0 || c.IdleTimeout <= 0 || c.HedgeAfter <= 0:
		return fmt.Errorf("storage timeouts %v / idle %v / hedge after %v: want > 0", c.RequestTimeout, c.IdleTimeout, c.HedgeAfter)
	case c.MinRate <= 0:
		return fmt.Errorf("storage min rate %d B/s: want > 0", c.MinRate)
	}
	return nil
}

// transferTimeout is the overall deadline of a transfer of n bytes.
func (c Config) transferTimeout(n int64) time.Duration {
	return c.RequestTimeout + time.Duration(float64(n)/float64(c.MinRate)*float64(time.Second))
}
