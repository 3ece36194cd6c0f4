package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var log = logging.Logger("peernode/api")

// Limits of the HTTP server.
const (
	// maxBodyBytes caps request bodies: every request body is a small JSON
	// object, but a blob upload's (isBlobUpload), which streams.
	maxBodyBytes = 64 << 10
	// readHeaderTimeout drops clients that trickle their headers.
	readHeaderTimeout = 10 * time.Second
	// connectTimeout bounds POST /v1/connect when the client sets no
	// deadline of its own.
	connectTimeout = 30 * time.Second
	// MaxReasonLen caps a trust decision's reason: it is kept in the trust
	// store and told to the node, whose handshake message holds 256 bytes.
	MaxReasonLen = 256
)

// ErrRemoteAddr is returned by Listen for a non-loopback address when remote
// access was not allowed.
var ErrRemoteAddr = errors.New("API address is not a loopback address")

// ErrListen is wrapped when the API cannot listen on its address.
var ErrListen = errors.New("API cannot listen on")

// Listen opens the API listener on addr (host:port). Unless allowRemote, the
// host must be a loopback address or "localhost": the token travels in
// clear text.
func Listen(addr string, allowRemote bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("API address %q: %w", addr, err)
	}
	if !allowRemote && !isLoopback(host) {
		return nil, fmt.Errorf("%w: %s would expose the control API beyond this machine", ErrRemoteAddr, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrListen, addr, err)
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is the control API's HTTP server.
type Server struct {
	backend Backend
	token   []byte
	web     *webSessions
	srv     *http.Server
}

// NewServer serves backend to callers that present token, and the web page
// to browsers that logged in with it.
func NewServer(backend Backend, token string) *Server {
	s := &Server{backend: backend, token: []byte(token), web: newWebSessions()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleWebAsset)
	mux.HandleFunc("GET "+webuiAssetsPath, s.handleWebAsset)
	mux.HandleFunc("POST "+loginPath, s.handleLogin)
	mux.HandleFunc("GET "+loginPath, s.handleLoginCode)
	mux.HandleFunc("POST "+logoutPath, s.handleLogout)
	mux.HandleFunc("POST "+WebUILinkPath, s.handleWebUILink)
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /v1/id", s.handleID)
	mux.HandleFunc("GET /v1/peers", s.handlePeers)
	mux.HandleFunc("GET /v1/peers/{node}/score", s.handleScore)
	mux.HandleFunc("POST /v1/peers/{node}/ping", s.handlePing)
	mux.HandleFunc("GET /v1/members", s.handleMembers)
	mux.HandleFunc("GET /v1/crawl", s.handleCrawl)
	mux.HandleFunc("POST /v1/connect", s.handleConnect)
	mux.HandleFunc("GET /v1/trust", s.handleTrust)
	mux.HandleFunc("GET /v1/trust/pending", s.handlePending)
	mux.HandleFunc("POST /v1/trust/{node}/{action}", s.handleTrustAction)
	mux.HandleFunc("POST "+blobsPath, s.handlePutBlob)
	mux.HandleFunc("GET "+blobsPath, s.handleListBlobs)
	mux.HandleFunc("GET "+blobsPath+"/{id}", s.handleGetBlob) // and HEAD
	mux.HandleFunc("DELETE "+blobsPath+"/{id}", s.handleDeleteBlob)
	mux.HandleFunc("POST "+blobsPath+"/{id}/check", s.handleCheckBlob)
	s.srv = &http.Server{
		Handler:           s.authenticate(jsonMisses(mux)),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          nil,
	}
	return s
}

// jsonMisses answers requests no route takes (404, or 405 with Allow) in
// JSON like every other error of the API, instead of the mux's plain text.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		miss := &missWriter{header: http.Header{}}
		h.ServeHTTP(miss, r)
		if allow := miss.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		switch miss.code {
		case http.StatusMethodNotAllowed:
			writeError(w, miss.code, fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, miss.header.Get("Allow")))
		case http.StatusNotFound, 0:
			writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s: the routes are listed in the README (The control API)", r.Method, r.URL.Path))
		default: // a redirect, say: as the mux answers
			for k, v := range miss.header {
				w.Header()[k] = v
			}
			w.WriteHeader(miss.code)
			_, _ = w.Write(miss.body)
		}
	})
}

// missWriter keeps what the mux answers to a request no route takes.
type missWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (m *missWriter) Header() http.Header { return m.header }
func (m *missWriter) WriteHeader(code int) {
	if m.code == 0 {
		m.code = code
	}
}
func (m *missWriter) Write(b []byte) (int, error) {
	if m.code == 0 {
		m.code = http.StatusOK
	}
	m.body = append(m.body, b...)
	return len(b), nil
}

// Handler returns the authenticated handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Serve serves on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops accepting requests and waits up to ctx for those in flight.
func (s *Server) Close(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// authenticate rejects any request without the bearer token or a browser
// session, but for the page and its login (isPublic). A session's requests
// that change state must also carry CSRFHeader, else 403.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.hasBearerToken(r), isPublic(r):
		case s.hasSession(r):
			if !csrfOK(r) {
				writeError(w, http.StatusForbidden, msgCSRF)
				return
			}
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="peernode"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API token: the token is in the daemon's data directory (api.token)")
			return
		}
		if !isBlobUpload(r) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleID(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.ID())
}

func (s *Server) handlePeers(w http.ResponseWriter, _ *http.Request) {
	peers := s.backend.Peers()
	if peers == nil {
		peers = []PeerInfo{}
	}
	SortPeers(peers)
	writeJSON(w, http.StatusOK, peers)
}

// pathNode reads the {node} of the request's path; on a malformed ID it
// answers 400 and returns false.
func pathNode(w http.ResponseWriter, r *http.Request) (peer.ID, bool) {
	p, err := peer.Decode(r.PathValue("node"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("node ID %q: %v", r.PathValue("node"), err))
		return "", false
	}
	return p, true
}

func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	p, ok := pathNode(w, r)
	if !ok {
		return
	}
	e, err := s.backend.Score(p)
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if e.Components == nil {
		e.Components = []ScoreComponent{}
	}
	writeJSON(w, http.StatusOK, e)
}

// handlePing pings a node; the backend bounds the pings, and the caller
// going away ends them early. A failure answers 502 with the RTTs measured
// before it and the error, as a PingResult (its "error" field makes it an
// error body too).
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	p, ok := pathNode(w, r)
	if !ok {
		return
	}
	count, err := ParsePingQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rtts, err := s.backend.Ping(r.Context(), p, count)
	if errors.Is(err, ErrBadRequest) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res := PingResult{NodeID: p.String(), RTTsMillis: make([]float64, 0, len(rtts))}
	for _, d := range rtts {
		res.RTTsMillis = append(res.RTTsMillis, Millis(d))
	}
	if err != nil {
		res.Error = err.Error()
		writeJSON(w, http.StatusBadGateway, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleMembers(w http.ResponseWriter, _ *http.Request) {
	ms := s.backend.Members()
	if ms == nil {
		ms = []Member{}
	}
	for i := range ms {
		if ms[i].Addrs == nil {
			ms[i].Addrs = []string{}
		}
	}
	writeJSON(w, http.StatusOK, ms)
}

// handleCrawl runs a crawl within the query's bounds; the request's context
// ends it early if the caller goes away.
func (s *Server) handleCrawl(w http.ResponseWriter, r *http.Request) {
	req, err := ParseCrawlQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.backend.Crawl(r.Context(), req)
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if res.Nodes == nil {
		res.Nodes = []CrawledNode{}
	}
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if n.Addrs == nil {
			n.Addrs = []string{}
		}
		if n.Connected == nil {
			n.Connected = []string{}
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "request body must be {\"addr\": MULTIADDR}: "+err.Error())
		return
	}
	ctx := r.Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	res, err := s.backend.Connect(ctx, req.Addr)
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) handleTrust(w http.ResponseWriter, _ *http.Request) {
	tl := s.backend.Trust()
	if tl.Records == nil {
		tl.Records = []TrustRecord{}
	}
	writeJSON(w, http.StatusOK, tl)
}

func (s *Server) handlePending(w http.ResponseWriter, _ *http.Request) {
	reqs := s.backend.Pending()
	if reqs == nil {
		reqs = []PendingRequest{}
	}
	for i := range reqs {
		if reqs[i].Addrs == nil {
			reqs[i].Addrs = []string{}
		}
	}
	writeJSON(w, http.StatusOK, reqs)
}

func (s *Server) handleTrustAction(w http.ResponseWriter, r *http.Request) {
	action, err := ParseTrustAction(r.PathValue("action"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := pathNode(w, r)
	if !ok {
		return
	}
	var req TrustActionRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "request body must be empty or {\"reason\": TEXT}: "+err.Error())
		return
	}
	if len(req.Reason) > MaxReasonLen || !utf8.ValidString(req.Reason) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason must be UTF-8 text of at most %d bytes", MaxReasonLen))
		return
	}
	rec, err := s.backend.TrustAction(action, p, req.Reason)
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Debugw("writing response failed", "err", err)
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
