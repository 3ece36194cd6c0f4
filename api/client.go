package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"syscall"
)

// ErrNoDaemon means no daemon is running on the data directory.
var ErrNoDaemon = errors.New("no peernode daemon is running")

// maxResponseBytes caps what the client reads of one answer.
const maxResponseBytes = 16 << 20

// StatusError is an error answer from the API.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("API answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Client talks to a daemon's control API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the API at addr (host:port).
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{}}
}

// ClientForDataDir finds the daemon running on dataDir through the address
// and token files it keeps there. It returns ErrNoDaemon when there is none.
func ClientForDataDir(dataDir string) (*Client, error) {
	addr, err := ReadAddrFile(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w on %s", ErrNoDaemon, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("find the daemon's API: %w", err)
	}
	tok, err := ReadToken(dataDir)
	if err != nil {
		return nil, err
	}
	return NewClient(addr, tok), nil
}

// ID returns the daemon's identity.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var out IDInfo
	return out, c.do(ctx, http.MethodGet, "/v1/id", nil, &out)
}

// Peers returns the peers connected now.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	return out, c.do(ctx, http.MethodGet, "/v1/peers", nil, &out)
}

// Connect asks the daemon to connect to addr, a multiaddr ending in
// /p2p/<node ID>.
func (c *Client) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	var out ConnectResult
	return out, c.do(ctx, http.MethodPost, "/v1/connect", ConnectRequest{Addr: addr}, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (nothing answers at %s)", ErrNoDaemon, c.base)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
