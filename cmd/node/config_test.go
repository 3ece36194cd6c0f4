package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
