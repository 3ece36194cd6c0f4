package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/libp2p/go-libp2p/core/peer"

	"peernode/api"
)

const trustUsage = `trust SUBCOMMAND [--reason TEXT] [--json] [--data-dir DIR]

Subcommands:
  list           the trust policy and the operator's decisions
  pending        the nodes awaiting approval (manual policy)
  approve NODE   accept a pending node: it becomes verified on its live connection
  reject NODE    refuse a pending node: it is told, disconnected and banned
  revoke NODE    withdraw trust from a node that had it: disconnected and banned
  allow NODE     allow a node ahead of time (allowlist), lifting any ban
  deny NODE      deny a node, connected or not

NODE is a node ID (12D3KooW...). Decisions are kept in trust.json in the
daemon's data directory.

Examples:
  peernode trust pending
  peernode trust approve 12D3KooWHpsuWafzyij5Gn3mmNnsuPwRARdi9ZaNhZmHMLG59x8D
  peernode trust revoke 12D3KooWHpsuWafzyij5Gn3mmNnsuPwRARdi9ZaNhZmHMLG59x8D --reason "laptop stolen"`

// pastTense names what a trust action did, for its one-line report.
var pastTense = map[api.TrustAction]string{
	api.ActionApprove: "approved",
	api.ActionReject:  "rejected",
	api.ActionRevoke:  "revoked",
	api.ActionAllow:   "allowed",
	api.ActionDeny:    "denied",
}

func runTrust(env *cliEnv, args []string) error {
	fs, common := newFlagSet(env, "trust", trustUsage)
	var reason string
	fs.StringVar(&reason, "reason", "", "why: kept with the decision, and told to the node on reject, revoke and deny")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("expected a subcommand: list, pending, approve, reject, revoke, allow or deny")
	}
	sub, rest := pos[0], pos[1:]
	var (
		action api.TrustAction
		node   string
	)
	switch sub {
	case "list", "pending":
		if err := wantArgs(rest, 0, ""); err != nil {
			return err
		}
		if flagsSet(fs)["reason"] {
			return usagef("--reason goes with approve, reject, revoke, allow and deny, not %s", sub)
		}
	default:
		if action, err = api.ParseTrustAction(sub); err != nil {
			return usagef("unknown subcommand %q: want list, pending, approve, reject, revoke, allow or deny", sub)
		}
		if err := wantArgs(rest, 1, "one node ID: peernode trust "+sub+" NODE"); err != nil {
			return err
		}
		if _, err := peer.Decode(rest[0]); err != nil {
			return usagef("%q is not a node ID: node IDs look like 12D3KooW..., as 'peernode id' and 'peernode trust pending' print them", rest[0])
		}
		node = rest[0]
		if len(reason) > api.MaxReasonLen {
			return usagef("--reason is %d bytes, at most %d", len(reason), api.MaxReasonLen)
		}
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	switch sub {
	case "list":
		err = trustList(ctx, env, c, common.json)
	case "pending":
		err = trustPending(ctx, env, c, common.json)
	default:
		err = trustAction(ctx, env, c, action, node, reason, common.json)
	}
	return noDaemonHint(err, common.dataDir)
}

func trustList(ctx context.Context, env *cliEnv, c *api.Client, asJSON bool) error {
	tl, err := c.Trust(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env, tl)
	}
	fmt.Fprintf(env.stdout, "trust policy: %s\n", tl.Policy)
	if len(tl.Records) == 0 {
		fmt.Fprintln(env.stdout, "no trust decisions")
		return nil
	}
	expiring := slices.ContainsFunc(tl.Records, func(r api.TrustRecord) bool { return !r.Expires.IsZero() })
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	header := "NODE ID\tNAME\tDECISION\tDECIDED\tREASON"
	if expiring {
		header += "\tEXPIRES"
	}
	fmt.Fprintln(tw, header)
	for _, r := range tl.Records {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.NodeID, orDash(r.Name), r.Decision, ago(r.Created), orDash(r.Reason))
		if expiring {
			exp := "never"
			if !r.Expires.IsZero() {
				exp = r.Expires.Local().Format(time.DateTime)
			}
			line += "\t" + exp
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func trustPending(ctx context.Context, env *cliEnv, c *api.Client, asJSON bool) error {
	reqs, err := c.Pending(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env, reqs)
	}
	if len(reqs) == 0 {
		fmt.Fprintln(env.stdout, "no nodes await approval")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tNAME\tROLE\tVERSION\tWAITING\tEXPIRES IN\tJUSTIFICATION")
	for _, r := range reqs {
		left := time.Until(r.Expires).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.NodeID, orDash(r.Name), orDash(r.Role), orDash(r.Version),
			time.Since(r.Since).Round(time.Second), max(left, 0), orDash(r.Justification))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "\nAccept one with 'peernode trust approve NODE', refuse it with 'peernode trust reject NODE'.")
	return nil
}

func trustAction(ctx context.Context, env *cliEnv, c *api.Client, action api.TrustAction, node, reason string, asJSON bool) error {
	rec, err := c.TrustAction(ctx, action, node, reason)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env, rec)
	}
	who := rec.NodeID
	if rec.Name != "" {
		who += " (" + clean(rec.Name) + ")"
	}
	fmt.Fprintf(env.stdout, "%s %s: decision %s", pastTense[action], who, rec.Decision)
	if rec.Reason != "" {
		fmt.Fprintf(env.stdout, ", reason %q", rec.Reason)
	}
	fmt.Fprintln(env.stdout)
	return nil
}

// orDash cleans s for a table cell, "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// clean replaces control characters (tabs and escapes included) in text a
// remote node chose, so it cannot break a table or the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// ago is how long ago t was, to the second: "1m5s ago".
func ago(t time.Time) string {
	return max(time.Since(t).Round(time.Second), 0).String() + " ago"
}
