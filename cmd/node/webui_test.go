package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peernode/api"
)

// noBackend serves the API's own routes only: any backend call panics.
type noBackend struct{ api.Backend }

// fakeWebDaemon serves an API on 127.0.0.1 and records it in a data directory
// as a daemon does; it returns the directory.
func fakeWebDaemon(t *testing.T, h http.Handler) string {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, err := api.LoadOrCreateToken(dir)
	require.NoError(t, err)
	require.NoError(t, api.WriteAddrFile(dir, strings.TrimPrefix(srv.URL, "http://")))
	return dir
}

func TestWebUICommand(t *testing.T) {
	dir := t.TempDir()
	tok, err := api.LoadOrCreateToken(dir)
	require.NoError(t, err)
	srv := httptest.NewServer(api.NewServer(noBackend{}, tok).Handler())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	require.NoError(t, api.WriteAddrFile(dir, addr))

	env, errb := testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"webui", "--data-dir", dir}), errb.String())
	out := env.stdout.(*bytes.Buffer).String()
	require.Contains(t, out, "within 5 minutes")
	require.Contains(t, out, "http://"+addr+"/login?code=")

	env, errb = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"webui", "--json", "--data-dir", dir}), errb.String())
	var link api.WebUILink
	require.NoError(t, json.Unmarshal(env.stdout.(*bytes.Buffer).Bytes(), &link))
	require.True(t, strings.HasPrefix(link.URL, "http://"+addr+"/login?code="), link.URL)
	require.False(t, link.Expires.IsZero())

	// The link logs a browser in.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"))
	require.NotEmpty(t, resp.Cookies())
}

func TestWebUICommandErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env, errb := testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"webui", "--data-dir", dir}))
	require.Contains(t, errb.String(), "no peernode daemon is running")
	require.Contains(t, errb.String(), "peernode daemon --data-dir "+dir)
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "webui creates no data directory")

	env, errb = testEnv(nil)
	require.Equal(t, exitUsage, run(env, []string{"webui", "now", "--data-dir", dir}))
	require.Contains(t, errb.String(), `unexpected argument "now"`)

	env, _ = testEnv(nil)
	require.Equal(t, exitOK, run(env, []string{"webui", "--help"}))
	help := env.stdout.(*bytes.Buffer).String()
	for _, w := range []string{"Usage: peernode webui", "Examples:", "peernode webui --json", "api.token", "-data-dir"} {
		require.Contains(t, help, w)
	}

	// A daemon from before the web page.
	old := fakeWebDaemon(t, http.NotFoundHandler())
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"webui", "--data-dir", old}))
	require.Contains(t, errb.String(), "older peernode")

	// A daemon that does not take the token.
	wrong := fakeWebDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error": "missing or wrong API token"}`, http.StatusUnauthorized)
	}))
	env, errb = testEnv(nil)
	require.Equal(t, exitError, run(env, []string{"webui", "--data-dir", wrong}))
	require.Contains(t, errb.String(), "401")

}
