package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"peernode/internal/atomicfile"
)

// KeyFileName is the identity key's file in the data directory.
const KeyFileName = "identity.key"

// maxKeyFileSize bounds what is read from the key file: an Ed25519 key
// marshals to 68 bytes, so anything much larger is not a key.
const maxKeyFileSize = 4 << 10

// KeyFileError explains why the identity key cannot be used. The file is
// never modified when this is returned.
type KeyFileError struct {
	Path   string
	Reason string
	Err    error
}

func (e *KeyFileError) Error() string {
	msg := fmt.Sprintf("identity key %s: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// LoadIdentity reads the node key from dataDir. It refuses a key file that
// other users can read, that cannot be read, or that does not hold an
// Ed25519 key. A missing file is reported with fs.ErrNotExist.
func LoadIdentity(dataDir string) (crypto.PrivKey, error) {
	path := filepath.Join(dataDir, KeyFileName)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &KeyFileError{Path: path, Reason: "not found", Err: err}
		}
		return nil, &KeyFileError{Path: path, Reason: "cannot be read", Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyFileError{Path: path, Reason: "cannot be read", Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Reason: "is not a regular file"}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileError{Path: path, Reason: fmt.Sprintf(
			"is readable by other users (mode %#o); the key must be private: run chmod 600 %s, or create a new identity if it may have leaked", perm, path)}
	}
	if fi.Size() > maxKeyFileSize {
		return nil, &KeyFileError{Path: path, Reason: fmt.Sprintf("is %d bytes, too large to be a key (corrupt?)", fi.Size())}
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, &KeyFileError{Path: path, Reason: "cannot be read", Err: err}
	}
	key, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, &KeyFileError{Path: path, Reason: "is corrupt (not a libp2p private key); restore it from a backup, or move it away to create a new identity", Err: err}
	}
	if key.Type() != crypto.Ed25519 {
		return nil, &KeyFileError{Path: path, Reason: fmt.Sprintf("holds a %s key; peernode uses Ed25519", key.Type())}
	}
	return key, nil
}

// LoadOrCreateIdentity loads the node key from dataDir, generating and
// saving a new Ed25519 key (mode 0600) if there is none yet. created reports
// whether a new key was made.
func LoadOrCreateIdentity(dataDir string) (key crypto.PrivKey, created bool, err error) {
	key, err = LoadIdentity(dataDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := ensureDataDir(dataDir); err != nil {
		return nil, false, err
	}
	key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate identity key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode identity key: %w", err)
	}
	path := filepath.Join(dataDir, KeyFileName)
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return nil, false, fmt.Errorf("save identity key: %w", err)
	}
	return key, true, nil
}

// ensureDataDir creates the data directory with mode 0700 if it is missing.
func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}
