package api

import (
	"context"
	"net/http"
)

// WebUILink asks the daemon for a one-time link that logs a browser into
// its web page: it works once, within LoginCodeTTL.
func (c *Client) WebUILink(ctx context.Context) (WebUILink, error) {
	var out WebUILink
	return out, c.do(ctx, http.MethodPost, WebUILinkPath, nil, &out)
}
