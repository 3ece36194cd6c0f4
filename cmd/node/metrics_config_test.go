package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// --metrics (config key metrics) sets the unauthenticated metrics address;
// by default there is none, and a malformed one is a usage error.
func TestMetricsFlag(t *testing.T) {
	env, _ := testEnv(nil)
	dir := filepath.Join(t.TempDir(), "data")

	s, _, err := daemonSettings(t, env, dir)
	require.NoError(t, err)
	require.Empty(t, s.Metrics)
	cfg, err := nodeConfig(dir, s, nil)
	require.NoError(t, err)
	require.Empty(t, cfg.MetricsAddr)

	s, _, err = daemonSettings(t, env, dir, "--metrics", "127.0.0.1:9464")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9464", s.Metrics)
	cfg, err = nodeConfig(dir, s, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9464", cfg.MetricsAddr)

	_, _, err = daemonSettings(t, env, dir, "--metrics", "no-port")
	require.ErrorAs(t, err, new(usageError))
	require.Contains(t, err.Error(), "metrics address")
}

func TestMetricsConfigKey(t *testing.T) {
	env, _ := testEnv(nil)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, configFileName), []byte(`{"metrics": "0.0.0.0:9464"}`), 0o600))
	s, first, err := daemonSettings(t, env, dir)
	require.NoError(t, err)
	require.False(t, first)
	require.Equal(t, "0.0.0.0:9464", s.Metrics)

	s, _, err = daemonSettings(t, env, dir, "--metrics", "")
	require.NoError(t, err)
	require.Empty(t, s.Metrics, "the flag overrides the file, also to turn it off")

	saved := defaultSettings()
	saved.Metrics = "127.0.0.1:9464"
	require.NoError(t, saveSettings(dir, saved))
	loaded, _, err := loadSettings(dir)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9464", loaded.Metrics)
}
