package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
)

func TestDeriveNetwork(t *testing.T) {
	a1, err := DeriveNetwork([]byte("a secret of sixteen+"))
	require.NoError(t, err)
	a2, err := DeriveNetwork([]byte("a secret of sixteen+"))
	require.NoError(t, err)
	b, err := DeriveNetwork([]byte("another secret, as long"))
	require.NoError(t, err)

	require.Equal(t, a1, a2, "derivation must be deterministic")
	require.NotEqual(t, a1.ID, b.ID)
	require.NotEqual(t, a1.Fingerprint, b.Fingerprint)
	require.True(t, a1.Private)
	require.Len(t, a1.ID, 16)
	require.Len(t, a1.PSK, 32)
	require.Len(t, a1.HandshakeKey, 32)
	require.NotEqual(t, a1.PSK, a1.HandshakeKey, "labels must separate the keys")
	require.Regexp(t, `^[0-9a-f]{4}-[0-9a-f]{4}$`, a1.Fingerprint)

	pub := PublicNetwork()
	require.False(t, pub.Private)
	require.Nil(t, pub.PSK, "the public network must not use pnet")
	require.NotEqual(t, pub.ID, a1.ID)
	require.Equal(t, pub, PublicNetwork())
}

func TestDeriveNetworkRejectsWeakSecret(t *testing.T) {
	_, err := DeriveNetwork([]byte("short"))
	require.ErrorIs(t, err, ErrWeakSecret)
	require.Contains(t, err.Error(), "at least 16")
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	good := write("good", "  the cluster secret value\n", 0o600)
	b, exposed, err := ReadSecretFile(good)
	require.NoError(t, err)
	require.False(t, exposed)
	require.Equal(t, "the cluster secret value", string(b), "surrounding white space must not count")

	_, exposed, err = ReadSecretFile(write("open", "the cluster secret value", 0o644))
	require.NoError(t, err)
	require.True(t, exposed)

	for name, path := range map[string]string{
		"missing":   filepath.Join(dir, "nope"),
		"empty":     write("empty", " \n\t", 0o600),
		"directory": dir,
	} {
		_, _, err := ReadSecretFile(path)
		require.ErrorIs(t, err, ErrSecretFile, name)
		require.Contains(t, err.Error(), path, name)
	}
}

// The secret never appears in what a Network holds or prints.
func TestNetworkDoesNotHoldSecret(t *testing.T) {
	secret := "do-not-print-this-secret"
	nw, err := DeriveNetwork([]byte(secret))
	require.NoError(t, err)
	for _, s := range []string{nw.ID, nw.Fingerprint, string(nw.PSK), string(nw.HandshakeKey)} {
		require.False(t, strings.Contains(s, secret))
	}
}

// A node dialling a node of another secret through pnet fails in the
// security negotiation, and the bootstrap warning says what that means.
func TestDialHintForAnotherSecret(t *testing.T) {
	start := func(secret string) *Node {
		cfg := LocalTestConfig(t.TempDir())
		cfg.APIAddr = ""
		nw, err := DeriveNetwork([]byte(secret))
		require.NoError(t, err)
		cfg.Network = nw
		cfg.DialTimeout = 2 * time.Second
		n, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close() })
		require.NoError(t, n.Start())
		return n
	}
	a := start("the first cluster's secret")
	b := start("the second cluster's secret")
	err := b.connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()})
	require.Error(t, err)
	require.Contains(t, b.dialHint(err), "compare the secret fingerprints", "%v", err)
	require.Empty(t, b.dialHint(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")))
	require.Contains(t, b.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}).Error(),
		"compare the secret fingerprints", "an operator's connect says it too")

	// A node this one banned: the operator is told so, and how to lift it.
	b.gater.ban(a.ID())
	err = b.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()})
	require.ErrorContains(t, err, "this node has banned it for 10m0s more; 'peernode trust allow "+a.ID().String()+"' lifts the ban")
}
