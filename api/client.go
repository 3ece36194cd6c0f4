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
	"net/url"
	"strconv"
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

// Peers returns the peers connected now, and those that presented an
// identity and went away.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	return out, c.do(ctx, http.MethodGet, "/v1/peers", nil, &out)
}

// Members returns the daemon's member table, by node ID.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	return out, c.do(ctx, http.MethodGet, "/v1/members", nil, &out)
}

// Crawl asks the daemon to crawl the network within req's bounds (start
// from DefaultCrawlRequest); the daemon checks them (400 when out of range). ctx must outlast req.Timeout,
// or the answer is lost when the crawl was nearly done.
func (c *Client) Crawl(ctx context.Context, req CrawlRequest) (CrawlResult, error) {
	var out CrawlResult
	return out, c.do(ctx, http.MethodGet, "/v1/crawl?"+req.query(), nil, &out)
}

// Connect asks the daemon to connect to addr, a multiaddr ending in
// /p2p/<node ID>.
func (c *Client) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	var out ConnectResult
	return out, c.do(ctx, http.MethodPost, "/v1/connect", ConnectRequest{Addr: addr}, &out)
}

// Trust returns the daemon's trust policy and the operator's decisions.
func (c *Client) Trust(ctx context.Context) (TrustList, error) {
	var out TrustList
	return out, c.do(ctx, http.MethodGet, "/v1/trust", nil, &out)
}

// Pending returns the nodes awaiting approval, oldest first.
func (c *Client) Pending(ctx context.Context) ([]PendingRequest, error) {
	var out []PendingRequest
	return out, c.do(ctx, http.MethodGet, "/v1/trust/pending", nil, &out)
}

// TrustAction applies action to the node nodeID, recording reason (may be
// empty), and returns the resulting trust record.
func (c *Client) TrustAction(ctx context.Context, action TrustAction, nodeID, reason string) (TrustRecord, error) {
	var out TrustRecord
	path := "/v1/trust/" + url.PathEscape(nodeID) + "/" + url.PathEscape(string(action))
	return out, c.do(ctx, http.MethodPost, path, TrustActionRequest{Reason: reason}, &out)
}

// Score explains the score of the node nodeID.
func (c *Client) Score(ctx context.Context, nodeID string) (ScoreExplanation, error) {
	var out ScoreExplanation
	return out, c.do(ctx, http.MethodGet, "/v1/peers/"+url.PathEscape(nodeID)+"/score", nil, &out)
}

// Ping asks the daemon to ping the node nodeID count times. When a ping
// fails (502), the result still holds the RTTs measured before, with the
// *StatusError. ctx must outlast the pings: each may take the daemon's ping
// timeout.
func (c *Client) Ping(ctx context.Context, nodeID string, count int) (PingResult, error) {
	var out PingResult
	path := "/v1/peers/" + url.PathEscape(nodeID) + "/ping?" + url.Values{PingParamCount: {strconv.Itoa(count)}}.Encode()
	err := c.doPartial(ctx, http.MethodPost, path, nil, &out, http.StatusBadGateway)
	if out.RTTsMillis == nil {
		out.RTTsMillis = []float64{}
	}
	return out, err
}

// Approve accepts a pending node.
func (c *Client) Approve(ctx context.Context, nodeID, reason string) (TrustRecord, error) {
	return c.TrustAction(ctx, ActionApprove, nodeID, reason)
}

// Reject refuses a pending node.
func (c *Client) Reject(ctx context.Context, nodeID, reason string) (TrustRecord, error) {
	return c.TrustAction(ctx, ActionReject, nodeID, reason)
}

// Revoke withdraws trust from a node that had it.
func (c *Client) Revoke(ctx context.Context, nodeID, reason string) (TrustRecord, error) {
	return c.TrustAction(ctx, ActionRevoke, nodeID, reason)
}

// Allow allows a node, ahead of time or again.
func (c *Client) Allow(ctx context.Context, nodeID, reason string) (TrustRecord, error) {
	return c.TrustAction(ctx, ActionAllow, nodeID, reason)
}

// Deny denies a node.
func (c *Client) Deny(ctx context.Context, nodeID, reason string) (TrustRecord, error) {
	return c.TrustAction(ctx, ActionDeny, nodeID, reason)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doPartial(ctx, method, path, in, out, 0)
}

// doPartial is do that also decodes an error answer with status partial
// (0 for none) into out, for answers that carry partial results.
func (c *Client) doPartial(ctx context.Context, method, path string, in, out any, partial int) error {
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
		if partial != 0 && resp.StatusCode == partial {
			_ = json.Unmarshal(b, out) // what it holds, if anything
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
