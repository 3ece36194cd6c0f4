// Command peernode runs a peernode daemon and talks to a running one.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command could not do its work
	exitUsage = 2 // bad flags, arguments or configuration
)

// usageError marks errors caused by the command line or configuration; they
// exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(env *cliEnv, args []string) error
}

var commands = []command{
	{"daemon", "run a node in the foreground", runDaemon},
	{"id", "show this node's identity (works without a running daemon)", runID},
	{"peers", "list the peers and members the daemon knows, best score first: peernode peers --help", runPeers},
	{"ping", "ping a node through the daemon: peernode ping NODE [--count N]", runPing},
	{"crawl", "walk the network from the daemon, node by node: peernode crawl --help", runCrawl},
	{"connect", "connect the daemon to a peer: peernode connect MULTIADDR", runConnect},
	{"trust", "list, approve, reject, revoke, allow or deny nodes: peernode trust --help", runTrust},
	{"put", "store a file in the cluster, print its blob ID: peernode put FILE [--replicas K]", runPut},
	{"get", "fetch a blob by its ID: peernode get ID [-o FILE]", runGet},
	{"blobs", "list or remove the blobs this node holds: peernode blobs --help", runBlobs},
	{"webui", "print a one-time link that logs a browser into the daemon's web page", runWebUI},
	{"demo", "run a narrated private network of N nodes in this process: peernode demo [--nodes N]", runDemo},
	{"version", "show the software version", runVersion},
}

// cliEnv is what a command reads and writes besides its arguments.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// signals, if set, replaces the process's SIGINT/SIGTERM for the daemon.
	signals <-chan os.Signal
}

func main() {
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(env, os.Args[1:]))
}

func run(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run(env, []string{args[1], "--help"})
		}
		printUsage(env.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(env, args[1:])
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, errHelp):
			return exitOK
		case errors.As(err, new(usageError)):
			fmt.Fprintf(env.stderr, "peernode %s: %v\n", c.name, err)
			fmt.Fprintf(env.stderr, "Run 'peernode %s --help' for usage.\n", c.name)
			return exitUsage
		default:
			fmt.Fprintf(env.stderr, "peernode %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(env.stderr, "peernode: unknown command %q\n\n", args[0])
	printUsage(env.stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "peernode: a libp2p peer node for private clusters.")
	fmt.Fprintln(w, "\nUsage: peernode COMMAND [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --data-dir (default ~/.peernode, or $PEERNODE_PATH) and --json.")
	fmt.Fprintln(w, "Run 'peernode COMMAND --help' for a command's flags.")
}
