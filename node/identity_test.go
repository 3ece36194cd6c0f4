package node

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

func TestIdentityCreatedOnceAndReloaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, created, err := LoadOrCreateIdentity(dir)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, crypto.Ed25519, int(k1.Type()))

	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	k2, created, err := LoadOrCreateIdentity(dir)
	require.NoError(t, err)
	require.False(t, created)
	id1, _ := peer.IDFromPrivateKey(k1)
	id2, _ := peer.IDFromPrivateKey(k2)
	require.Equal(t, id1, id2)
}

// A key file that cannot be trusted or used stops the node with a clear
// message, and is left exactly as it was.
func TestIdentityBadKeyFileUntouched(t *testing.T) {
	good := func(t *testing.T, dir string) {
		_, _, err := LoadOrCreateIdentity(dir)
		require.NoError(t, err)
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{"world readable", func(t *testing.T, dir string) {
			good(t, dir)
			require.NoError(t, os.Chmod(filepath.Join(dir, KeyFileName), 0o644))
		}, "readable by other users"},
		{"group readable", func(t *testing.T, dir string) {
			good(t, dir)
			require.NoError(t, os.Chmod(filepath.Join(dir, KeyFileName), 0o640))
		}, "readable by other users"},
		{"corrupt", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFileName), []byte("not a key at all"), 0o600))
		}, "corrupt"},
		{"empty", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFileName), nil, 0o600))
		}, "corrupt"},
		{"truncated", func(t *testing.T, dir string) {
			good(t, dir)
			p := filepath.Join(dir, KeyFileName)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, b[:len(b)/2], 0o600))
		}, "corrupt"},
		{"huge", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFileName), make([]byte, 1<<20), 0o600))
		}, "too large"},
		{"unreadable (a directory)", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, KeyFileName), 0o700))
		}, "not a regular file"},
		{"wrong key type", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(dir, 0o700))
			k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
			require.NoError(t, err)
			b, err := crypto.MarshalPrivateKey(k)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFileName), b, 0o600))
		}, "Ed25519"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.prepare(t, dir)
			path := filepath.Join(dir, KeyFileName)
			before := snapshot(t, path)

			_, _, err := LoadOrCreateIdentity(dir)
			var kfe *KeyFileError
			require.ErrorAs(t, err, &kfe)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), path)

			_, err = New(LocalTestConfig(dir))
			require.ErrorAs(t, err, &kfe, "New must refuse the key too")
			require.Equal(t, before, snapshot(t, path), "the key file must be left untouched")
		})
	}
}

type fileState struct {
	mode os.FileMode
	data string
}

func snapshot(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	if fi.IsDir() {
		return fileState{mode: fi.Mode()}
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return fileState{mode: fi.Mode(), data: string(b)}
}
