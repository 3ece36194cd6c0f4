package handshake

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults.
const (
	// DefaultTimeout bounds a whole handshake, and how long the listening
	// side waits for one on a new connection.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxClockSkew is the largest clock difference accepted: wide
	// enough for machines without NTP for a while, narrow enough that a
	// recorded hello goes stale.
	DefaultMaxClockSkew = 5 * time.Minute
)

// Config configures a Service.
type Config struct {
	// Key is the node key: it signs our proofs.
	Key crypto.PrivKey
	// NetworkID and HandshakeKey come from the network secret.
	NetworkID    string
	HandshakeKey []byte
	// Name, Role and Version are what our hello presents.
	Name    string
	Role    Role
	Version string
	// Justification is an optional note for operators who approve us by
	// hand.
	Justification string
	// Instance is 16 random bytes drawn once per process.
	Instance []byte
	// ListenAddrs returns the addresses our hello advertises.
	ListenAddrs func() []ma.Multiaddr
	// Timeout bounds one handshake. Default DefaultTimeout.
	Timeout time.Duration
	// MaxClockSkew: see DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MinVersion and MaxVersion override the versions we speak; tests use
	// them to play an incompatible peer. Zero: this build's range.
	MinVersion, MaxVersion uint32
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Role == "" {
		c.Role = RoleFull
	}
	if c.MinVersion == 0 && c.MaxVersion == 0 {
		c.MinVersion, c.MaxVersion = MinVersion, MaxVersion
	}
	if c.ListenAddrs == nil {
		c.ListenAddrs = func() []ma.Multiaddr { return nil }
	}
}

func (c *Config) validate() error {
	switch {
	case c.Key == nil:
		return errors.New("handshake: no node key")
	case c.NetworkID == "":
		return errors.New("handshake: no network ID")
	case len(c.HandshakeKey) == 0:
		return errors.New("handshake: no handshake key")
	case len(c.Instance) != InstanceSize:
		return fmt.Errorf("handshake: instance must be %d bytes", InstanceSize)
	case !validText(c.Name, MaxNameLen):
		return fmt.Errorf("handshake: name must be UTF-8 text of at most %d bytes", MaxNameLen)
	case !validText(c.Justification, MaxJustificationLen):
		return fmt.Errorf("handshake: justification must be UTF-8 text of at most %d bytes", MaxJustificationLen)
	case c.Timeout < 0 || c.MaxClockSkew < 0:
		return errors.New("handshake: negative timeout or clock skew")
	}
	_, err := ParseRole(string(c.Role))
	return err
}
