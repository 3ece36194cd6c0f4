package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Crawl bounds: the defaults are discovery.DefaultCrawlConfig's (the api
// package does not import discovery; test/api_test.go checks they agree).
const (
	// DefaultCrawlDepth has no limit.
	DefaultCrawlDepth = -1
	// DefaultCrawlMaxPeers caps the nodes one crawl asks.
	DefaultCrawlMaxPeers = 1000
	// DefaultCrawlTimeout bounds one crawl.
	DefaultCrawlTimeout = 30 * time.Second
	// MaxCrawlTimeout is the longest crawl the API runs: an HTTP request
	// held open longer is more likely a mistake than a wish.
	MaxCrawlTimeout = 5 * time.Minute
)

// Query parameters of GET /v1/crawl.
const (
	CrawlParamDepth   = "depth"
	CrawlParamMax     = "max"
	CrawlParamTimeout = "timeout"
)

// CrawlRequest bounds a crawl: GET /v1/crawl?depth=&max=&timeout=.
type CrawlRequest struct {
	// Depth is how many hops from this node the crawl asks: 0 asks only
	// this node, -1 has no limit.
	Depth int
	// MaxPeers caps the nodes asked, this node included.
	MaxPeers int
	// Timeout bounds the whole crawl, at most MaxCrawlTimeout.
	Timeout time.Duration
}

// DefaultCrawlRequest is an unlimited depth, 1000 nodes, 30 s.
func DefaultCrawlRequest() CrawlRequest {
	return CrawlRequest{Depth: DefaultCrawlDepth, MaxPeers: DefaultCrawlMaxPeers, Timeout: DefaultCrawlTimeout}
}

// CrawlParamError is a crawl bound that is malformed or out of range.
type CrawlParamError struct {
	// Param is the query parameter: depth, max or timeout.
	Param string
	// Value is what was given.
	Value string
	// Want says what is accepted.
	Want string
}

func (e *CrawlParamError) Error() string {
	return fmt.Sprintf("crawl parameter %s=%s: want %s", e.Param, e.Value, e.Want)
}

// What each crawl parameter accepts.
var crawlWant = map[string]string{
	CrawlParamDepth:   "an integer, -1 (no limit) or more",
	CrawlParamMax:     "an integer, at least 1",
	CrawlParamTimeout: fmt.Sprintf("a positive duration such as 30s or 2m, at most %s", MaxCrawlTimeout),
}

func crawlParamError(param, value string) error {
	return &CrawlParamError{Param: param, Value: value, Want: crawlWant[param]}
}

// Validate checks the bounds; the error is a *CrawlParamError.
func (r CrawlRequest) Validate() error {
	switch {
	case r.Depth < -1:
		return crawlParamError(CrawlParamDepth, strconv.Itoa(r.Depth))
	case r.MaxPeers < 1:
		return crawlParamError(CrawlParamMax, strconv.Itoa(r.MaxPeers))
	case r.Timeout <= 0 || r.Timeout > MaxCrawlTimeout:
		return crawlParamError(CrawlParamTimeout, r.Timeout.String())
	}
	return nil
}

// query encodes r as GET /v1/crawl's query.
func (r CrawlRequest) query() string {
	return url.Values{
		CrawlParamDepth:   {strconv.Itoa(r.Depth)},
		CrawlParamMax:     {strconv.Itoa(r.MaxPeers)},
		CrawlParamTimeout: {r.Timeout.String()},
	}.Encode()
}

// crawlParams are GET /v1/crawl's parameters, in the order they are read.
var crawlParams = []string{CrawlParamDepth, CrawlParamMax, CrawlParamTimeout}

// ParseCrawlQuery reads GET /v1/crawl's query: each parameter at most once,
// those absent take their defaults, unknown ones are refused. Of several
// faults, the first in the order depth, max, timeout is reported.
func ParseCrawlQuery(rawQuery string) (CrawlRequest, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return CrawlRequest{}, fmt.Errorf("crawl query %q: %w", rawQuery, err)
	}
	var unknown []string
	for k := range q {
		if _, ok := crawlWant[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return CrawlRequest{}, fmt.Errorf("unknown crawl parameter %q: want %s, %s or %s",
			unknown[0], CrawlParamDepth, CrawlParamMax, CrawlParamTimeout)
	}
	req := DefaultCrawlRequest()
	for _, k := range crawlParams {
		vs, ok := q[k]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return CrawlRequest{}, fmt.Errorf("crawl parameter %s given %d times: give it once", k, len(vs))
		}
		v := vs[0]
		switch k {
		case CrawlParamDepth:
			req.Depth, err = strconv.Atoi(v)
		case CrawlParamMax:
			req.MaxPeers, err = strconv.Atoi(v)
		case CrawlParamTimeout:
			req.Timeout, err = time.ParseDuration(v)
		}
		if err != nil {
			return CrawlRequest{}, crawlParamError(k, v)
		}
	}
	return req, req.Validate()
}
