package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"peernode/api"
)

// crawlAnswerGrace is how much longer than the crawl's own timeout the CLI
// waits for the daemon's answer: the daemon returns what it learnt when the
// timeout strikes, and that answer must still arrive.
const crawlAnswerGrace = 10 * time.Second

const crawlUsage = `crawl [--depth N] [--max-peers M] [--timeout D] [--json] [--data-dir DIR]

Walks the network from the running daemon, breadth first along connections:
the daemon asks itself, then each node it is connected to, then the nodes
those are connected to, and so on, each node once, within the bounds below.
Prints one line per node asked (its depth in hops, node ID, name, how many
nodes it is connected to, and why it could not be asked, if so), then a
summary. A crawl that times out prints what it learnt by then.

Examples:
  peernode crawl                                  the whole network, up to 1000 nodes, within 30s
  peernode crawl --depth 1                        the daemon and the nodes it is connected to
  peernode crawl --max-peers 50 --timeout 2m --json`

// crawlFlagNames maps a crawl parameter to the flag that sets it.
var crawlFlagNames = map[string]string{
	api.CrawlParamDepth:   "depth",
	api.CrawlParamMax:     "max-peers",
	api.CrawlParamTimeout: "timeout",
}

// parseCrawl reads crawl's flags and checks the bounds as the daemon will.
func parseCrawl(env *cliEnv, args []string) (api.CrawlRequest, *commonFlags, error) {
	fs, common := newFlagSet(env, "crawl", crawlUsage)
	req := api.DefaultCrawlRequest()
	fs.IntVar(&req.Depth, "depth", req.Depth, "how many hops from the daemon to ask: 0 asks only the daemon, -1 has no limit")
	fs.IntVar(&req.MaxPeers, "max-peers", req.MaxPeers, "most nodes to ask, the daemon included")
	fs.DurationVar(&req.Timeout, "timeout", req.Timeout,
		fmt.Sprintf("how long the crawl may take, at most %s; what was learnt by then is printed", api.MaxCrawlTimeout))
	pos, err := parseArgs(fs, args)
	if err != nil {
		return req, common, err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return req, common, err
	}
	if err := req.Validate(); err != nil {
		var pe *api.CrawlParamError
		if errors.As(err, &pe) {
			return req, common, usagef("--%s %s: want %s", crawlFlagNames[pe.Param], pe.Value, pe.Want)
		}
		return req, common, usageError{err}
	}
	return req, common, nil
}

func runCrawl(env *cliEnv, args []string) error {
	req, common, err := parseCrawl(env, args)
	if err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), req.Timeout+crawlAnswerGrace)
	defer cancel()
	res, err := c.Crawl(ctx, req)
	if err != nil {
		return noDaemonHint(err, common.dataDir)
	}
	if common.json {
		return printJSON(env, res)
	}
	return printCrawl(env, res)
}

// printCrawl prints one line per node asked, then the summary.
func printCrawl(env *cliEnv, res api.CrawlResult) error {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEPTH\tNODE ID\tNAME\tCONNECTED\tERROR")
	for _, n := range res.Nodes {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", n.Depth, n.NodeID, orDash(n.Name), n.ConnectedCount, orDash(n.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	elapsed := time.Duration(res.ElapsedMillis * float64(time.Millisecond)).Round(time.Millisecond)
	fmt.Fprintf(env.stdout, "\n%d nodes asked, %d members seen, %d unvisited, %d dropped, timed out: %s, elapsed %s\n",
		len(res.Nodes), res.Members, res.Unvisited, res.Dropped, yesNo(res.TimedOut), elapsed)
	switch {
	case res.TimedOut:
		fmt.Fprintln(env.stdout, "The crawl timed out before it was done: raise --timeout to reach further.")
	case res.Unvisited > 0:
		fmt.Fprintln(env.stdout, "Unvisited nodes were seen but not asked: raise --depth or --max-peers to reach them.")
	}
	return nil
}
