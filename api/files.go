package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"peernode/internal/atomicfile"
)

// Files in the data directory.
const (
	// TokenFileName holds the bearer token (mode 0600).
	TokenFileName = "api.token"
	// AddrFileName holds the address a running daemon's API listens on. It
	// exists only while the daemon runs.
	AddrFileName = "api.addr"
)

// tokenBytes is the token's entropy: 256 bits.
const tokenBytes = 32

// LoadOrCreateToken returns the API token kept in dataDir, creating one on
// first use.
func LoadOrCreateToken(dataDir string) (string, error) {
	tok, err := ReadToken(dataDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate API token: %w", err)
	}
	tok = hex.EncodeToString(b)
	if err := atomicfile.Write(filepath.Join(dataDir, TokenFileName), []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save API token: %w", err)
	}
	return tok, nil
}

// ReadToken reads the API token from dataDir.
func ReadToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, TokenFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("API token file %s is empty", path)
	}
	return tok, nil
}

// WriteAddrFile records the address the daemon's API listens on.
func WriteAddrFile(dataDir, addr string) error {
	return atomicfile.Write(filepath.Join(dataDir, AddrFileName), []byte(addr+"\n"), 0o600)
}

// RemoveAddrFile removes the address file when the daemon stops.
func RemoveAddrFile(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, AddrFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ReadAddrFile returns the address a running daemon's API listens on.
func ReadAddrFile(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, AddrFileName))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
