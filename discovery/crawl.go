package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Crawl defaults.
const (
	DefaultCrawlDepth       = -1
	DefaultCrawlMaxPeers    = 1000
	DefaultCrawlTimeout     = 30 * time.Second
	DefaultCrawlConcurrency = 8
)

// CrawlConfig bounds a crawl.
type CrawlConfig struct {
	// Depth is how many hops from the start the crawl asks: 0 asks only
	// the start, 1 also the nodes it is connected to, and so on; -1 has no
	// limit.
	Depth int
	// MaxPeers caps the nodes asked, the start included.
	MaxPeers int
	// Timeout bounds the whole crawl; what was learnt by then is returned.
	Timeout time.Duration
	// Concurrency caps the exchanges in flight.
	Concurrency int
	// Skip are nodes never asked nor counted as unvisited: the crawling
	// node itself when it crawls from another, so its own connections do
	// not shortcut the walk.
	Skip []peer.ID
}

// DefaultCrawlConfig is an unlimited depth, 1000 nodes, 30 s, 8 at once.
func DefaultCrawlConfig() CrawlConfig {
	return CrawlConfig{Depth: DefaultCrawlDepth, MaxPeers: DefaultCrawlMaxPeers, Timeout: DefaultCrawlTimeout, Concurrency: DefaultCrawlConcurrency}
}

// Validate checks the bounds.
func (c CrawlConfig) Validate() error {
	switch {
	case c.Depth < -1:
		return fmt.Errorf("crawl depth %d: want -1 (unlimited) or more", c.Depth)
	case c.MaxPeers < 1:
		return fmt.Errorf("crawl max peers %d: want at least 1", c.MaxPeers)
	case c.Timeout <= 0:
		return fmt.Errorf("crawl timeout %s: want a positive duration", c.Timeout)
	case c.Concurrency < 1:
		return fmt.Errorf("crawl concurrency %d: want at least 1", c.Concurrency)
	}
	return nil
}

// FetchFunc asks one node for its peer-exchange answer.
type FetchFunc func(ctx context.Context, id peer.ID) (Peers, error)

// CrawledNode is one node the crawl asked.
type CrawledNode struct {
	NodeID peer.ID
	// Depth is its distance in hops from the start, along connections.
	Depth int
	// Via is the node whose answer listed it ("" for the start).
	Via peer.ID
	// Announcement is its own signed announcement, as the freshest answer
	// that carried it told (nil if none did).
	Announcement *Announcement
	// Connected is what it answered: the nodes it is connected to.
	Connected []peer.ID
	// Announcements is how many verified announcements its answer held.
	Announcements int
	// Err says why it could not be asked; empty when it answered.
	Err string
}

// CrawlResult is what a crawl found.
type CrawlResult struct {
	// Nodes in the order they were reached, breadth first.
	Nodes []CrawledNode
	// Members are the distinct nodes whose announcements the answers
	// carried, asked or not.
	Members int
	// Dropped counts answer entries that failed verification.
	Dropped int
	// Unvisited counts nodes seen in answers but not asked, because of the
	// depth, the cap on peers or the timeout.
	Unvisited int
	// TimedOut is set when the timeout (or the caller) ended the crawl
	// before it was done.
	TimedOut bool
	Elapsed  time.Duration
}

// Crawl walks the network breadth first from start along connections:
// it asks start, then the nodes start's answer lists as connected, and so
// on, each node once, within cfg's bounds. Every announcement was verified
// by DecodePeers; fetch asks one node (start included).
func Crawl(ctx context.Context, start peer.ID, fetch FetchFunc, cfg CrawlConfig) (CrawlResult, error) {
	if err := cfg.Validate(); err != nil {
		return CrawlResult{}, err
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	var res CrawlResult
	anns := map[peer.ID]Announcement{}
	visited := map[peer.ID]bool{start: true}
	skip := map[peer.ID]bool{}
	for _, id := range cfg.Skip {
		if id != start {
			visited[id], skip[id] = true, true
		}
	}
	level := []CrawledNode{{NodeID: start}}
	for depth := 0; len(level) > 0; depth++ {
		room := cfg.MaxPeers - len(res.Nodes)
		if room < len(level) {
			level = level[:room]
		}
		answers := fetchLevel(ctx, level, fetch, cfg.Concurrency)
		var next []CrawledNode
		for i := range level {
			n, a := &level[i], answers[i]
			n.Depth = depth
			if a.err != nil {
				n.Err = a.err.Error()
				if errors.Is(a.err, context.DeadlineExceeded) && ctx.Err() != nil {
					n.Err = "crawl timed out"
				}
				continue
			}
			n.Connected, n.Announcements = a.peers.Connected, len(a.peers.Announcements)
			res.Dropped += a.peers.Dropped
			for _, ann := range a.peers.Announcements {
				if old, ok := anns[ann.NodeID]; !ok || ann.Seq > old.Seq {
					anns[ann.NodeID] = ann
				}
			}
			if cfg.Depth >= 0 && depth >= cfg.Depth {
				continue
			}
			for _, id := range a.peers.Connected {
				if !visited[id] {
					visited[id] = true
					next = append(next, CrawledNode{NodeID: id, Via: n.NodeID})
				}
			}
		}
		res.Nodes = append(res.Nodes, level...)
		if ctx.Err() != nil || len(res.Nodes) >= cfg.MaxPeers {
			break
		}
		level = next
	}
	asked := map[peer.ID]bool{}
	for i := range res.Nodes {
		n := &res.Nodes[i]
		asked[n.NodeID] = true
		if a, ok := anns[n.NodeID]; ok {
			n.Announcement = &a
		}
	}
	seen := map[peer.ID]bool{}
	for id := range anns {
		seen[id] = true
	}
	for _, n := range res.Nodes {
		for _, id := range n.Connected {
			seen[id] = true
		}
	}
	for id := range seen {
		if !asked[id] && !skip[id] {
			res.Unvisited++
		}
	}
	res.Members = len(anns)
	res.TimedOut = ctx.Err() != nil
	res.Elapsed = time.Since(began)
	return res, nil
}

type answer struct {
	peers Peers
	err   error
}

// fetchLevel asks every node of one level, at most limit at once.
func fetchLevel(ctx context.Context, level []CrawledNode, fetch FetchFunc, limit int) []answer {
	out := make([]answer, len(level))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range level {
		if ctx.Err() != nil {
			out[i].err = ctx.Err()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := fetch(ctx, level[i].NodeID)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			out[i] = answer{peers: p, err: err}
		}()
	}
	wg.Wait()
	return out
}
