package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peernode/discovery"
	"peernode/node"
	"peernode/protocols/handshake"
)

func testEnv(vars map[string]string) (*cliEnv, *bytes.Buffer) {
	var errb bytes.Buffer
	return &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(k string) string { return vars[k] }}, &errb
}

// daemonSettings runs the daemon's flag and config merge without starting a
// node.
func daemonSettings(t *testing.T, env *cliEnv, dir string, args ...string) (settings, bool, error) {
	t.Helper()
	fs, _ := newFlagSet(env, "daemon", "daemon")
	var sf settingsFlags
	sf.register(fs)
	_, err := parseArgs(fs, args)
	require.NoError(t, err)
	_, s, first, err := daemonConfig(env, fs, &sf, dir)
	return s, first, err
}

// The config file holds the settings of the first start; later flags
// override it for one run without changing it.
func TestConfigFilePrecedence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env, _ := testEnv(nil)

	s, first, err := daemonSettings(t, env, dir, "--name", "alpha", "--listen", "/ip4/127.0.0.1/tcp/0")
	require.NoError(t, err)
	require.True(t, first)
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "merging settings must not write anything")
	require.NoError(t, saveSettings(dir, s))

	s, first, err = daemonSettings(t, env, dir)
	require.NoError(t, err)
	require.False(t, first)
	require.Equal(t, "alpha", s.Name)
	require.Equal(t, []string{"/ip4/127.0.0.1/tcp/0"}, s.Listen)
	require.Equal(t, defaultSettings().API, s.API)

	s, _, err = daemonSettings(t, env, dir, "--name", "beta", "--api", "127.0.0.1:0")
	require.NoError(t, err)
	require.Equal(t, "beta", s.Name)
	require.Equal(t, "127.0.0.1:0", s.API)
	saved, _, err := loadSettings(dir)
	require.NoError(t, err)
	require.Equal(t, "alpha", saved.Name, "flags must not rewrite the config file")
}

func TestConfigFileRejectsUnknownAndBrokenContent(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key": `{"nmae": "typo"}`,
		"not json":    `{name: x`,
		"wrong type":  `{"listen": "/ip4/127.0.0.1/tcp/1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, configFileName)
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			_, _, err := loadSettings(dir)
			require.ErrorAs(t, err, new(usageError))
			require.Contains(t, err.Error(), path)
			b, _ := os.ReadFile(path)
			require.Equal(t, content, string(b))
		})
	}
}

func TestSecretPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("secret from the file\n"), 0o600))
	envSecret := map[string]string{secretEnv: "secret from the environment"}

	netOf := func(vars map[string]string, args ...string) string {
		t.Helper()
		env, _ := testEnv(vars)
		fs, _ := newFlagSet(env, "daemon", "daemon")
		var sf settingsFlags
		sf.register(fs)
		_, err := parseArgs(fs, args)
		require.NoError(t, err)
		cfg, _, _, err := daemonConfig(env, fs, &sf, filepath.Join(dir, "data"))
		require.NoError(t, err)
		return cfg.Network.ID
	}
	public := netOf(nil)
	fromFile := netOf(nil, "--secret-file", file)
	fromEnv := netOf(envSecret)
	require.NotEqual(t, public, fromFile)
	require.NotEqual(t, fromFile, fromEnv)
	require.Equal(t, fromFile, netOf(envSecret, "--secret-file", file), "a flag beats the environment")
	require.Equal(t, fromEnv, netOf(nil, "--secret", "secret from the environment"))

	env, errb := testEnv(nil)
	fs, _ := newFlagSet(env, "daemon", "daemon")
	var sf settingsFlags
	sf.register(fs)
	_, err := parseArgs(fs, []string{"--secret", "secret from the command line"})
	require.NoError(t, err)
	_, _, _, err = daemonConfig(env, fs, &sf, filepath.Join(dir, "data"))
	require.NoError(t, err)
	require.Contains(t, errb.String(), "process list")
	require.NotContains(t, errb.String(), "secret from the command line")
}

func TestParseArgsIntersperses(t *testing.T) {
	env, _ := testEnv(nil)
	fs, common := newFlagSet(env, "connect", "connect")
	pos, err := parseArgs(fs, []string{"/ip4/1.2.3.4/tcp/1/p2p/x", "--json", "--", "--not-a-flag"})
	require.NoError(t, err)
	require.True(t, common.json)
	require.Equal(t, []string{"/ip4/1.2.3.4/tcp/1/p2p/x", "--not-a-flag"}, pos)
}

// daemonNodeConfig runs the daemon's flag and config merge and returns the
// node configuration, without starting a node.
func daemonNodeConfig(t *testing.T, dir string, args ...string) (node.Config, error) {
	t.Helper()
	env, _ := testEnv(nil)
	fs, _ := newFlagSet(env, "daemon", "daemon")
	var sf settingsFlags
	sf.register(fs)
	if _, err := parseArgs(fs, args); err != nil {
		return node.Config{}, err
	}
	cfg, _, _, err := daemonConfig(env, fs, &sf, dir)
	return cfg, err
}

func TestTrustSettingsDefaults(t *testing.T) {
	cfg, err := daemonNodeConfig(t, filepath.Join(t.TempDir(), "data"))
	require.NoError(t, err)
	require.Equal(t, handshake.PolicyOpen, cfg.Trust)
	require.Equal(t, handshake.RoleFull, cfg.Role)
	require.Empty(t, cfg.Justification)
	require.True(t, cfg.Pnet)
	require.Equal(t, 10*time.Second, cfg.HandshakeTimeout)
	require.Equal(t, node.DuplicateReconnect, cfg.DuplicatePolicy)
}

func TestTrustSettingsFromFlagsAndFile(t *testing.T) {
	want := func(t *testing.T, cfg node.Config) {
		t.Helper()
		require.Equal(t, handshake.PolicyManual, cfg.Trust)
		require.Equal(t, handshake.RoleClient, cfg.Role)
		require.Equal(t, "lab box 7, ask Ana", cfg.Justification)
		require.False(t, cfg.Pnet)
		require.Equal(t, 3*time.Second, cfg.HandshakeTimeout)
		require.Equal(t, node.DuplicateStrict, cfg.DuplicatePolicy)
	}
	flags := []string{"--trust", "manual", "--role", "client", "--justification", "lab box 7, ask Ana",
		"--pnet=false", "--handshake-timeout", "3s", "--duplicate-policy", "strict"}

	t.Run("flags", func(t *testing.T) {
		cfg, err := daemonNodeConfig(t, filepath.Join(t.TempDir(), "data"), flags...)
		require.NoError(t, err)
		want(t, cfg)
	})
	t.Run("config file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, configFileName), []byte(`{
			"trust": "manual", "role": "client", "justification": "lab box 7, ask Ana",
			"pnet": false, "handshake_timeout": "3s", "duplicate_policy": "strict"}`), 0o600))
		cfg, err := daemonNodeConfig(t, dir)
		require.NoError(t, err)
		want(t, cfg)

		// Flags override the file for one run.
		cfg, err = daemonNodeConfig(t, dir, "--trust", "allowlist", "--pnet", "--handshake-timeout", "1m")
		require.NoError(t, err)
		require.Equal(t, handshake.PolicyAllowlist, cfg.Trust)
		require.True(t, cfg.Pnet)
		require.Equal(t, time.Minute, cfg.HandshakeTimeout)
		require.Equal(t, handshake.RoleClient, cfg.Role, "from the file")
	})
	t.Run("saved on first start", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		env, _ := testEnv(nil)
		s, first, err := daemonSettings(t, env, dir, flags...)
		require.NoError(t, err)
		require.True(t, first)
		require.NoError(t, saveSettings(dir, s))
		b, err := os.ReadFile(filepath.Join(dir, configFileName))
		require.NoError(t, err)
		for _, kv := range []string{`"trust": "manual"`, `"role": "client"`, `"pnet": false`, `"handshake_timeout": "3s"`, `"duplicate_policy": "strict"`} {
			require.Contains(t, string(b), kv)
		}
		cfg, err := daemonNodeConfig(t, dir)
		require.NoError(t, err)
		want(t, cfg)
	})
	t.Run("older file without the keys", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, configFileName), []byte(`{"name": "old"}`), 0o600))
		cfg, err := daemonNodeConfig(t, dir)
		require.NoError(t, err)
		require.Equal(t, handshake.PolicyOpen, cfg.Trust)
		require.True(t, cfg.Pnet, "pnet stays on unless the file says otherwise")
		require.Equal(t, 10*time.Second, cfg.HandshakeTimeout)
	})
}

func TestTrustSettingsRejectBadValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		file string
		want string
	}{
		{name: "trust flag", args: []string{"--trust", "everyone"}, want: "--trust"},
		{name: "role flag", args: []string{"--role", "server"}, want: "--role"},
		{name: "duplicate policy flag", args: []string{"--duplicate-policy", "newest"}, want: "--duplicate-policy"},
		{name: "handshake timeout not a duration", args: []string{"--handshake-timeout", "soon"}, want: "handshake-timeout"},
		{name: "handshake timeout zero", args: []string{"--handshake-timeout", "0s"}, want: "must be positive"},
		{name: "pnet not a bool", args: []string{"--pnet=maybe"}, want: "pnet"},
		{name: "justification too long", args: []string{"--justification", strings.Repeat("j", handshake.MaxJustificationLen+1)}, want: "justification"},
		{name: "trust key", file: `{"trust": "everyone"}`, want: "trust"},
		{name: "role key", file: `{"role": ""}`, want: "role"},
		{name: "handshake_timeout key", file: `{"handshake_timeout": "soon"}`, want: "handshake_timeout"},
		{name: "handshake_timeout negative", file: `{"handshake_timeout": "-1s"}`, want: "must be positive"},
		{name: "duplicate_policy key", file: `{"duplicate_policy": "newest"}`, want: "duplicate_policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tt.file != "" {
				require.NoError(t, os.MkdirAll(dir, 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, configFileName), []byte(tt.file), 0o600))
			}
			_, err := daemonNodeConfig(t, dir, tt.args...)
			require.ErrorAs(t, err, new(usageError))
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDiscoverySettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env, _ := testEnv(nil)
	cfgOf := func(args ...string) (node.Config, error) {
		fs, _ := newFlagSet(env, "daemon", "daemon")
		var sf settingsFlags
		sf.register(fs)
		_, err := parseArgs(fs, args)
		require.NoError(t, err)
		cfg, _, _, err := daemonConfig(env, fs, &sf, dir)
		return cfg, err
	}
	cfg, err := cfgOf()
	require.NoError(t, err)
	require.Equal(t, discovery.DHTServer, cfg.DHTMode)
	require.Equal(t, discovery.DefaultAnnounceInterval, cfg.AnnounceInterval)
	require.Equal(t, discovery.DefaultStaleAfter, cfg.StaleAfter)

	cfg, err = cfgOf("--dht-mode", "client", "--announce-interval", "5s", "--stale-after", "20s")
	require.NoError(t, err)
	require.Equal(t, discovery.DHTClient, cfg.DHTMode)
	require.Equal(t, 5*time.Second, cfg.AnnounceInterval)
	require.Equal(t, 20*time.Second, cfg.StaleAfter)

	for _, bad := range [][]string{
		{"--dht-mode", "peer"},
		{"--announce-interval", "0s"},
		{"--announce-interval", "10s", "--stale-after", "15s"},
	} {
		_, err := cfgOf(bad...)
		require.ErrorAs(t, err, new(usageError), "%v", bad)
		require.Contains(t, err.Error(), "config key", "%v", bad)
	}
}

// --secret-file is remembered as an absolute path, so a later start from
// another directory finds it; a relative path written into config.json by
// hand is taken from the current directory, and the error says so.
func TestSecretFileRememberedAbsolute(t *testing.T) {
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "cluster.secret"), []byte("a secret of this cluster\n"), 0o600))
	t.Chdir(work)
	dir := filepath.Join(t.TempDir(), "data")
	env, _ := testEnv(nil)
	s, _, err := daemonSettings(t, env, dir, "--secret-file", "cluster.secret")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(work, "cluster.secret"), s.SecretFile)
	require.NoError(t, saveSettings(dir, s))

	t.Chdir(t.TempDir())
	cfg, err := daemonNodeConfig(t, dir)
	require.NoError(t, err)
	require.True(t, cfg.Network.Private)

	s.SecretFile = "cluster.secret"
	require.NoError(t, saveSettings(dir, s))
	_, err = daemonNodeConfig(t, dir)
	require.ErrorAs(t, err, new(usageError))
	require.Contains(t, err.Error(), "cluster.secret")
	require.Contains(t, err.Error(), "config.json secret_file; being relative, it is taken from the current directory")
}

func TestStorageSettingsRejectBadValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := daemonNodeConfig(t, dir, "--max-blob-size", "0")
	require.ErrorAs(t, err, new(usageError))
	require.Contains(t, err.Error(), "--max-blob-size (config key max_blob_size) 0: must be more than 0")
	require.NotContains(t, err.Error(), "storage-max")
}
