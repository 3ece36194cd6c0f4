package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"
)

// serveWeb starts a real HTTP server on 127.0.0.1 whose sessions follow
// clk, and returns its address.
func serveWeb(t *testing.T, b Backend, clk clock.Clock) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	srv := NewServer(b, token)
	srv.web.clock = clk
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see where a login sends it.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// send sends a request with the client's cookies and headers ("Key: value")
// and returns the answer, its body read.
func send(t *testing.T, c *http.Client, method, rawURL, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	require.NoError(t, err)
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ": ")
		require.True(t, ok, h)
		if k == "Host" {
			req.Host = v // Go sends req.Host, not a Host header
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// login posts the login form with tok and returns the answer.
func login(t *testing.T, c *http.Client, addr, tok string) *http.Response {
	t.Helper()
	resp, _ := send(t, c, http.MethodPost, "http://"+addr+"/login", url.Values{"token": {tok}}.Encode(),
		"Content-Type: application/x-www-form-urlencoded")
	return resp
}

// sessionCookie returns the session cookie resp sets, nil if none.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, sessionCookiePrefix) {
			return c
		}
	}
	return nil
}

const csrf = CSRFHeader + ": 1"

// The page and its files need no token; everything else still does.
func TestWebPageIsPublic(t *testing.T) {
	addr := serve(t, fakeBackend{})
	c := browser(t)
	for path, ctype := range map[string]string{"/": "text/html", "/webui/app.js": "text/javascript", "/webui/style.css": "text/css"} {
		resp, body := send(t, c, http.MethodGet, "http://"+addr+path, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Type"), ctype, path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		require.NotEmpty(t, body, path)
		require.NotContains(t, body, "http://", "%s loads nothing from elsewhere", path)
		require.NotContains(t, body, "https://", "%s loads nothing from elsewhere", path)
		resp, _ = send(t, c, http.MethodHead, "http://"+addr+path, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "HEAD %s", path)
	}
	_, page := send(t, c, http.MethodGet, "http://"+addr+"/", "")
	require.Contains(t, page, `src="/webui/app.js"`)
	require.Contains(t, page, `action="/login"`)

	resp, _ := send(t, c, http.MethodGet, "http://"+addr+"/webui/nope.js", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	// No way around the token through the public prefix.
	for _, path := range []string{"/webui/../v1/id", "/webui/%2e%2e/v1/id", "/webui//v1/id"} {
		resp, body := send(t, http.DefaultClient, http.MethodGet, "http://"+addr+path, "")
		require.NotEqual(t, http.StatusOK, resp.StatusCode, path)
		require.NotContains(t, body, fakeSelf, path)
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/id"}, {http.MethodGet, "/v1/peers"}, {http.MethodGet, "/v1/trust/pending"},
		{http.MethodGet, "/v1/blobs"}, {http.MethodPost, "/v1/trust/" + fakePeer + "/approve"},
		{http.MethodPost, WebUILinkPath}, {http.MethodPost, "/"}, {http.MethodDelete, "/login"}, {http.MethodGet, "/logout"},
	} {
		resp, body := send(t, c, r.method, "http://"+addr+r.path, "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s", r.method, r.path)
		require.Contains(t, body, "API token")
	}
}

// The login form takes the API token and sets a session cookie that
// authenticates the data routes.
func TestWebLoginWithToken(t *testing.T) {
	addr := serve(t, fakeBackend{})
	c := browser(t)
	for _, tok := range []string{"", "wrong", token + "x", token[:len(token)-1]} {
		resp := login(t, c, addr, tok)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, tok)
		require.Equal(t, "/?login=failed", resp.Header.Get("Location"), tok)
		require.Nil(t, sessionCookie(resp), tok)
		resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/id", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, tok)
	}

	resp := login(t, c, addr, token)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"))
	ck := sessionCookie(resp)
	require.NotNil(t, ck)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Equal(t, "peernode_session_"+port, ck.Name, "one cookie per API port: browsers share cookies across ports")
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.Equal(t, "/", ck.Path)
	require.Equal(t, int(SessionTTL/time.Second), ck.MaxAge)
	require.Len(t, ck.Value, 2*secretBytes)
	require.NotContains(t, ck.Value, token)

	for _, path := range []string{"/v1/id", "/v1/peers", "/v1/trust/pending", "/v1/members"} {
		resp, body := send(t, c, http.MethodGet, "http://"+addr+path, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.NotContains(t, body, "API token", path)
	}
	// A made-up session is no session.
	resp, _ = send(t, http.DefaultClient, http.MethodGet, "http://"+addr+"/v1/id", "", "Cookie: "+ck.Name+"="+strings.Repeat("0", 2*secretBytes))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	// The bearer token works as before, with or without a cookie.
	resp, _ = send(t, c, http.MethodPost, "http://"+addr+"/v1/trust/"+fakePeer+"/approve", "", "Authorization: Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// A session's state-changing requests need the CSRF header, which a form
// posted from another site cannot send.
func TestWebSessionNeedsCSRFHeader(t *testing.T) {
	var calls []trustCall
	addr := serve(t, fakeBackend{calls: &calls})
	c := browser(t)
	require.NotNil(t, sessionCookie(login(t, c, addr, token)))

	approve := "http://" + addr + "/v1/trust/" + fakePeer + "/approve"
	for _, h := range []string{"", CSRFHeader + ": 0", CSRFHeader + ": yes"} {
		var headers []string
		if h != "" {
			headers = append(headers, h)
		}
		resp, body := send(t, c, http.MethodPost, approve, "", headers...)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, h)
		require.Contains(t, body, CSRFHeader)
	}
	resp, _ := send(t, c, http.MethodDelete, "http://"+addr+"/v1/blobs/bafkr4i", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = send(t, c, http.MethodPost, "http://"+addr+"/v1/connect", `{"addr": "/ip4/127.0.0.1/tcp/1"}`, "Content-Type: application/json")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Empty(t, calls, "no trust action without the CSRF header")

	resp, body := send(t, c, http.MethodPost, approve, `{"reason": "from the page"}`, csrf, "Content-Type: application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, []trustCall{{ActionApprove, mustDecode(t, fakePeer), "from the page"}}, calls)
	// Reading needs no header.
	resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/trust", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// A one-time link logs in once; the second use fails.
func TestWebLoginCode(t *testing.T) {
	addr := serve(t, fakeBackend{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var se *StatusError
	_, err := NewClient(addr, "wrong").WebUILink(ctx)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)

	link, err := NewClient(addr, token).WebUILink(ctx)
	require.NoError(t, err)
	require.Regexp(t, `^http://`+addr+`/login\?code=[0-9a-f]{64}$`, link.URL)
	require.WithinDuration(t, time.Now().Add(LoginCodeTTL), link.Expires, time.Minute)

	c := browser(t)
	resp, _ := send(t, c, http.MethodGet, link.URL, "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"), "the code leaves the address bar")
	require.NotNil(t, sessionCookie(resp))
	resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/peers", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	other := browser(t)
	resp, _ = send(t, other, http.MethodGet, link.URL, "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/?login=expired", resp.Header.Get("Location"))
	require.Nil(t, sessionCookie(resp), "a code works once")
	for u, where := range map[string]string{
		"/login": "/", "/login?code=": "/",
		"/login?code=" + strings.Repeat("a", 64): "/?login=expired", "/login?code=" + token: "/?login=expired",
	} {
		resp, _ = send(t, other, http.MethodGet, "http://"+addr+u, "")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, u)
		require.Equal(t, where, resp.Header.Get("Location"), u)
		require.Nil(t, sessionCookie(resp), u)
	}
	resp, _ = send(t, other, http.MethodGet, "http://"+addr+"/v1/peers", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The link names the address the caller used.
	resp, body := send(t, http.DefaultClient, http.MethodPost, "http://"+addr+WebUILinkPath, "",
		"Authorization: Bearer "+token, "Host: localhost:1234")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"url":"http://localhost:1234/login?code=`)
}

// Sessions and codes expire.
func TestWebSessionAndCodeExpire(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	addr := serveWeb(t, fakeBackend{}, clk)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := NewClient(addr, token)

	c := browser(t)
	require.NotNil(t, sessionCookie(login(t, c, addr, token)))
	early, err := cl.WebUILink(ctx)
	require.NoError(t, err)
	require.Equal(t, clk.Now().Add(LoginCodeTTL), early.Expires)
	clk.Add(LoginCodeTTL - time.Second)
	late, err := cl.WebUILink(ctx)
	require.NoError(t, err)
	clk.Add(time.Second)
	resp, _ := send(t, browser(t), http.MethodGet, early.URL, "")
	require.Equal(t, "/?login=expired", resp.Header.Get("Location"), "a code expires")
	resp, _ = send(t, browser(t), http.MethodGet, late.URL, "")
	require.Equal(t, "/", resp.Header.Get("Location"))

	clk.Add(SessionTTL - LoginCodeTTL - time.Second)
	resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/id", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "a second before the session expires")
	clk.Add(time.Second)
	resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/id", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a session expires")
}

// Logging out ends the session at once.
func TestWebLogout(t *testing.T) {
	addr := serve(t, fakeBackend{})
	c := browser(t)
	ck := sessionCookie(login(t, c, addr, token))
	require.NotNil(t, ck)

	resp, _ := send(t, c, http.MethodPost, "http://"+addr+"/logout", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "logging out needs the CSRF header too")
	resp, _ = send(t, c, http.MethodGet, "http://"+addr+"/v1/id", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, _ = send(t, c, http.MethodPost, "http://"+addr+"/logout", "", csrf)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	cleared := sessionCookie(resp)
	require.NotNil(t, cleared)
	require.Negative(t, cleared.MaxAge, "the browser drops the cookie")
	resp, _ = send(t, http.DefaultClient, http.MethodGet, "http://"+addr+"/v1/id", "", "Cookie: "+ck.Name+"="+ck.Value)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the old cookie is no longer a session")
	// Logging out without a session does no harm.
	resp, _ = send(t, browser(t), http.MethodPost, "http://"+addr+"/logout", "", csrf)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// The session and code tables stay bounded, dropping the entry closest to
// expiry.
func TestWebSessionsAreCapped(t *testing.T) {
	ws := newWebSessions()
	clk := clock.NewMock()
	ws.clock = clk
	first, _, err := ws.newSession()
	require.NoError(t, err)
	for range maxSessions {
		clk.Add(time.Second)
		_, _, err := ws.newSession()
		require.NoError(t, err)
	}
	require.Len(t, ws.sessions, maxSessions)
	require.False(t, ws.valid(first), "the oldest session made room")
	for range 2 * maxLoginCodes {
		_, _, err := ws.newCode()
		require.NoError(t, err)
	}
	require.Len(t, ws.codes, maxLoginCodes)
	// Expired entries go first.
	clk.Add(SessionTTL)
	_, _, err = ws.newSession()
	require.NoError(t, err)
	require.Len(t, ws.sessions, 1)
}
