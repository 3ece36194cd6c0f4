package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"peernode/api"
	"peernode/scoring"
)

// printExplanation prints how a node's score is made: a summary line, one
// line per component and the total.
func printExplanation(env *cliEnv, e api.ScoreExplanation) error {
	rttText := "no RTT yet"
	if e.RTTMillis != nil {
		rttText = "smoothed RTT " + rtt(*e.RTTMillis)
	}
	fmt.Fprintf(env.stdout, "node %s: score %.3f (%s, reliability %.2f)\n\n", e.NodeID, e.Score, rttText, e.Reliability)
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tWEIGHT\tVALUE\tCONTRIBUTION\tSAMPLES\tLAST\tDETAIL")
	for _, c := range e.Components {
		fmt.Fprintf(tw, "%s\t%.2f\t%.3f\t%.3f\t%d\t%s\t%s\n", orDash(c.Name), c.Weight, c.Value, c.Contribution,
			c.Samples, agoOrDash(c.Last), orDash(c.Detail))
	}
	fmt.Fprintf(tw, "total\t\t\t%.3f\t\t\t\n", e.Score)
	return tw.Flush()
}

const pingUsage = `ping NODE [--count N] [--json] [--data-dir DIR]

Asks the daemon to ping NODE (a node ID, 12D3KooW...) N times, one after
another, with libp2p's ping protocol. The daemon connects to NODE first if
it is not connected (known addresses, else the DHT) and waits for its
handshake. Prints one line per round-trip time, then the minimum, average
and maximum. Pings stop at the first failure: the command then prints the
round-trip times measured before it and the error, and exits with status 1.
Every ping also counts towards NODE's score (peernode peers --explain NODE).

Examples:
  peernode ping 12D3KooW...
  peernode ping 12D3KooW... --count 10
  peernode ping 12D3KooW... --count 1 --json`

// pingAnswerGrace is how much longer than its pings' own timeouts the CLI
// waits for the daemon's answer: the daemon may first dial the node and
// wait for its handshake.
const pingAnswerGrace = requestTimeout

// parsePing reads ping's arguments and checks them as the daemon will.
func parsePing(env *cliEnv, args []string) (node string, count int, common *commonFlags, err error) {
	fs, common := newFlagSet(env, "ping", pingUsage)
	fs.IntVar(&count, "count", api.DefaultPingCount, fmt.Sprintf("how many pings, from 1 to %d", api.MaxPingCount))
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", 0, common, err
	}
	if err := wantArgs(pos, 1, "one node ID: peernode ping NODE"); err != nil {
		return "", 0, common, err
	}
	if err := checkNodeID(pos[0]); err != nil {
		return "", 0, common, err
	}
	if err := api.ValidatePingCount(count); err != nil {
		return "", 0, common, usagef("--count %d: want an integer from 1 to %d", count, api.MaxPingCount)
	}
	return pos[0], count, common, nil
}

func runPing(env *cliEnv, args []string) error {
	node, count, common, err := parsePing(env, args)
	if err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	// The daemon's own bound is count ping timeouts and a dial timeout;
	// the daemon's ping timeout is the default one.
	wait := time.Duration(count)*scoring.DefaultPingConfig().Timeout + pingAnswerGrace
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := c.Ping(ctx, node, count)
	var se *api.StatusError
	if err != nil && !(errors.As(err, &se) && se.Code == http.StatusBadGateway && res.Error != "") {
		return noDaemonHint(err, common.dataDir)
	}
	// Every ping answered, or some failed (502) and res says how far they
	// went.
	if common.json {
		if perr := printJSON(env, res); perr != nil {
			return perr
		}
	} else {
		printPing(env, res, count)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// printPing prints one line per RTT, then their minimum, average and
// maximum.
func printPing(env *cliEnv, res api.PingResult, count int) {
	for _, ms := range res.RTTsMillis {
		fmt.Fprintf(env.stdout, "rtt %s ms\n", pingMillis(ms))
	}
	if len(res.RTTsMillis) == 0 {
		return
	}
	sum := 0.0
	for _, ms := range res.RTTsMillis {
		sum += ms
	}
	fmt.Fprintf(env.stdout, "%d of %d pings to %s answered: min %s ms, avg %s ms, max %s ms\n",
		len(res.RTTsMillis), count, res.NodeID, pingMillis(slices.Min(res.RTTsMillis)),
		pingMillis(sum/float64(len(res.RTTsMillis))), pingMillis(slices.Max(res.RTTsMillis)))
}

// pingMillis formats milliseconds with two decimals.
func pingMillis(ms float64) string { return strconv.FormatFloat(ms, 'f', 2, 64) }
