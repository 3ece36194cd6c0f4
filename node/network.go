package node

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unicode"
)

// PublicSecret is the published secret of the public default network, which
// any node without a secret joins. Knowing it proves nothing.
const PublicSecret = "peernode public network v1"

// HKDF labels: one per derived value, so no two values can coincide. They are
// part of the protocol; changing one splits every network.
const (
	hkdfSalt         = "peernode/v1"
	labelNetworkID   = "peernode network id"
	labelHandshake   = "peernode handshake key"
	labelPnet        = "peernode pnet psk"
	labelFingerprint = "peernode secret fingerprint"
)

// MinSecretLen is the shortest secret accepted. Shorter secrets are guessable
// offline from a recorded handshake.
const MinSecretLen = 16

// Network is what a node derives from its network secret. It never holds the
// secret itself.
type Network struct {
	// ID names the network in protocol IDs, the announcement topic and the
	// rendezvous namespace: 16 lower-case hex digits. It is public.
	ID string
	// Private is false for the public default network.
	Private bool
	// HandshakeKey is the HMAC key proving membership during the handshake.
	HandshakeKey []byte
	// PSK is the libp2p private-network key; nil for the public network.
	PSK []byte
	// Fingerprint identifies the secret to operators (two nodes with the same
	// fingerprint share a secret) without revealing it: "xxxx-xxxx".
	Fingerprint string
}

// PublicNetwork returns the open default network.
func PublicNetwork() Network {
	n := deriveNetwork([]byte(PublicSecret))
	n.Private = false
	n.PSK = nil
	return n
}

// ErrWeakSecret is returned for a secret shorter than MinSecretLen.
var ErrWeakSecret = errors.New("network secret too short")

// DeriveNetwork derives a private network from its secret.
func DeriveNetwork(secret []byte) (Network, error) {
	if len(secret) < MinSecretLen {
		return Network{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrWeakSecret, len(secret), MinSecretLen)
	}
	return deriveNetwork(secret), nil
}

func deriveNetwork(secret []byte) Network {
	id := derive(secret, labelNetworkID, 8)
	fp := derive(secret, labelFingerprint, 4)
	return Network{
		ID:           hex.EncodeToString(id),
		Private:      true,
		HandshakeKey: derive(secret, labelHandshake, 32),
		PSK:          derive(secret, labelPnet, 32),
		Fingerprint:  hex.EncodeToString(fp[:2]) + "-" + hex.EncodeToString(fp[2:]),
	}
}

func derive(secret []byte, label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, []byte(hkdfSalt), label, n)
	if err != nil {
		// Only possible for n > 255*32, which no caller asks for.
		panic(fmt.Sprintf("hkdf %q: %v", label, err))
	}
	return out
}

// ErrSecretFile is wrapped by every failure to read a secret file.
var ErrSecretFile = errors.New("cannot use secret file")

// ReadSecretFile reads a network secret from path, trimming surrounding
// white space (so a trailing newline does not change the network). It also
// reports whether the file can be read by other users, which callers should
// warn about.
func ReadSecretFile(path string) (secret []byte, exposed bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w %s: %w", ErrSecretFile, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w %s: not a regular file", ErrSecretFile, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w %s: %w", ErrSecretFile, path, err)
	}
	b = bytes.TrimFunc(b, unicode.IsSpace)
	if len(b) == 0 {
		return nil, false, fmt.Errorf("%w %s: the file is empty", ErrSecretFile, path)
	}
	return b, fi.Mode().Perm()&fs.FileMode(0o077) != 0, nil
}
