package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// The operator's web page: index.html, app.js and style.css, embedded so the
// daemon serves them without any file or external asset. The page itself is
// public; it reads the JSON routes with a session cookie that the login
// form (the API token) or a one-time link (POST /v1/webui/link) sets.

//go:embed webui/index.html webui/app.js webui/style.css
var webuiFiles embed.FS

// Web page routes.
const (
	// webuiAssetsPath prefixes the page's script and style sheet.
	webuiAssetsPath = "/webui/"
	loginPath       = "/login"
	logoutPath      = "/logout"
	// WebUILinkPath answers a one-time login link (POST, token only).
	WebUILinkPath = "/v1/webui/link"
)

// Browser sessions.
const (
	// SessionTTL is how long a browser stays logged in: a working day, so
	// an operator logs in once, and a cookie left behind expires by itself.
	SessionTTL = 12 * time.Hour
	// LoginCodeTTL is how long a one-time link stays valid: long enough to
	// paste it into a browser, short enough that one left in a terminal's
	// scroll-back is useless.
	LoginCodeTTL = 5 * time.Minute
	// maxSessions and maxLoginCodes cap the memory the tables take; past
	// them the entry closest to expiry is dropped. Only token holders add
	// entries, so the caps only guard against a runaway script.
	maxSessions   = 256
	maxLoginCodes = 64
	// secretBytes is the entropy of a session ID or a login code.
	secretBytes = 32
	// CSRFHeader must be "1" on every state-changing request authenticated
	// by a session cookie: the page's fetch calls send it, a form posted
	// from another site cannot.
	CSRFHeader = "X-Peernode-CSRF"
	// sessionCookiePrefix names the session cookie; the API port follows,
	// because browsers share cookies across the ports of a host and several
	// daemons may run on one machine.
	sessionCookiePrefix = "peernode_session"
	// tokenField is the login form's field holding the API token.
	tokenField = "token"
)

// Where a login sends the browser.
const (
	loginOK      = "/"
	loginFailed  = "/?login=failed"
	loginExpired = "/?login=expired"
)

// WebUILink is the answer to POST /v1/webui/link.
type WebUILink struct {
	// URL logs a browser in, once, until Expires.
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// webAsset is one embedded file of the page.
type webAsset struct {
	contentType string
	body        []byte
}

// webAssets maps a path to the embedded file it serves.
var webAssets = func() map[string]webAsset {
	m := map[string]webAsset{}
	for path, f := range map[string]struct{ file, ctype string }{
		"/":                           {"webui/index.html", "text/html; charset=utf-8"},
		webuiAssetsPath + "app.js":    {"webui/app.js", "text/javascript; charset=utf-8"},
		webuiAssetsPath + "style.css": {"webui/style.css", "text/css; charset=utf-8"},
	} {
		b, err := webuiFiles.ReadFile(f.file)
		if err != nil {
			panic(fmt.Sprintf("embedded web page file %s: %v", f.file, err)) // a build defect
		}
		m[path] = webAsset{contentType: f.ctype, body: b}
	}
	return m
}()

// contentSecurityPolicy allows the page nothing but its own files and
// requests to its own origin, and no framing (clickjacking).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// webSessions holds the browser sessions and the one-time login codes,
// each by the SHA-256 of its secret with its expiry.
type webSessions struct {
	clock clock.Clock

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]time.Time
	codes    map[[sha256.Size]byte]time.Time
}

func newWebSessions() *webSessions {
	return &webSessions{
		clock:    clock.New(),
		sessions: map[[sha256.Size]byte]time.Time{},
		codes:    map[[sha256.Size]byte]time.Time{},
	}
}

// newSecret returns a random secret, hex-encoded, and its key in a table.
func newSecret() (string, [sha256.Size]byte, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", [sha256.Size]byte{}, fmt.Errorf("generate a session secret: %w", err)
	}
	s := hex.EncodeToString(b)
	return s, sha256.Sum256([]byte(s)), nil
}

// add records a new secret valid for ttl in table (capped at limit) and
// returns it with its expiry.
func (ws *webSessions) add(table map[[sha256.Size]byte]time.Time, limit int, ttl time.Duration) (string, time.Time, error) {
	s, key, err := newSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	now := ws.clock.Now()
	exp := now.Add(ttl)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var soonest [sha256.Size]byte
	var soonestExp time.Time
	for k, e := range table {
		if !now.Before(e) {
			delete(table, k)
			continue
		}
		if soonestExp.IsZero() || e.Before(soonestExp) {
			soonest, soonestExp = k, e
		}
	}
	if len(table) >= limit {
		delete(table, soonest)
	}
	table[key] = exp
	return s, exp, nil
}

// newSession starts a browser session.
func (ws *webSessions) newSession() (string, time.Time, error) {
	return ws.add(ws.sessions, maxSessions, SessionTTL)
}

// newCode creates a one-time login code.
func (ws *webSessions) newCode() (string, time.Time, error) {
	return ws.add(ws.codes, maxLoginCodes, LoginCodeTTL)
}

// valid reports whether session is a live session.
func (ws *webSessions) valid(session string) bool {
	if session == "" {
		return false
	}
	key := sha256.Sum256([]byte(session))
	now := ws.clock.Now()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	exp, ok := ws.sessions[key]
	if ok && !now.Before(exp) {
		delete(ws.sessions, key)
		return false
	}
	return ok
}

// redeem uses up a login code: it reports whether the code was valid.
func (ws *webSessions) redeem(code string) bool {
	if code == "" {
		return false
	}
	key := sha256.Sum256([]byte(code))
	now := ws.clock.Now()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	exp, ok := ws.codes[key]
	delete(ws.codes, key)
	return ok && now.Before(exp)
}

// end ends a session.
func (ws *webSessions) end(session string) {
	key := sha256.Sum256([]byte(session))
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.sessions, key)
}

// isPublic reports whether r is for the page or its login, served without
// the token or a session.
func isPublic(r *http.Request) bool {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch p := r.URL.Path; {
	case p == "/" || strings.HasPrefix(p, webuiAssetsPath):
		return get
	case p == loginPath:
		return get || r.Method == http.MethodPost
	case p == logoutPath:
		return r.Method == http.MethodPost
	}
	return false
}

// changesState reports whether a request may change the daemon's state.
func changesState(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// hasBearerToken reports whether r carries the API token.
func (s *Server) hasBearerToken(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.token) == 1
}

// sessionCookieName is the session cookie's name for the API port r came
// in on.
func sessionCookieName(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return sessionCookiePrefix + "_" + port
		}
	}
	return sessionCookiePrefix
}

// session returns r's session cookie value, "" without one.
func session(r *http.Request) string {
	c, err := r.Cookie(sessionCookieName(r))
	if err != nil {
		return ""
	}
	return c.Value
}

// hasSession reports whether r carries a live session cookie.
func (s *Server) hasSession(r *http.Request) bool {
	return s.web.valid(session(r))
}

// csrfOK reports whether a cookie-authenticated request may go on: one
// that changes state must carry CSRFHeader.
func csrfOK(r *http.Request) bool {
	return !changesState(r) || r.Header.Get(CSRFHeader) == "1"
}

const msgCSRF = "a request authenticated by the web page's session must carry the header " + CSRFHeader + ": 1"

// handleWebAsset serves the page and its files.
func (s *Server) handleWebAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := webAssets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time: a newer daemon serves a newer page.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// startSession sets a new session cookie and sends the browser to the page.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	id, exp, err := s.web.newSession()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookieName(r), Value: id, Path: "/", Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	redirect(w, loginOK)
}

// redirect sends the browser to path with 303 See Other, so that it fetches
// it with GET.
func redirect(w http.ResponseWriter, path string) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", path)
	w.WriteHeader(http.StatusSeeOther)
}

// handleLogin logs a browser in with the API token from the login form.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "login form: "+err.Error())
		return
	}
	got := strings.TrimSpace(r.PostForm.Get(tokenField))
	if subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
		log.Debugw("web page login with a wrong token", "remote", r.RemoteAddr)
		redirect(w, loginFailed)
		return
	}
	s.startSession(w, r)
}

// handleLoginCode logs a browser in with a one-time code.
func (s *Server) handleLoginCode(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	if code == "" {
		redirect(w, "/") // the login form
		return
	}
	if !s.web.redeem(code) {
		redirect(w, loginExpired)
		return
	}
	s.startSession(w, r)
}

// handleLogout ends the browser's session and clears its cookie.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !csrfOK(r) {
		writeError(w, http.StatusForbidden, msgCSRF)
		return
	}
	if id := session(r); id != "" {
		s.web.end(id)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// handleWebUILink creates a one-time login link to the page, on the address
// the caller reached the API at.
func (s *Server) handleWebUILink(w http.ResponseWriter, r *http.Request) {
	code, exp, err := s.web.newCode()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	host := r.Host
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	writeJSON(w, http.StatusOK, WebUILink{URL: "http://" + host + loginPath + "?code=" + code, Expires: exp})
}
