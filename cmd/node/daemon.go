package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"peernode/api"
	"peernode/node"
)

var log = logging.Logger("peernode/cmd")

// shutdownTimeout is how long the daemon waits for a clean stop after
// SIGINT/SIGTERM before exiting anyway.
const shutdownTimeout = 5 * time.Second

// secretEnv names the environment variable holding the network secret.
const secretEnv = "PEERNODE_SECRET"

func runDaemon(env *cliEnv, args []string) error {
	if env.getenv("GOLOG_LOG_LEVEL") == "" {
		// go-log's default is error; an operator wants peernode's own
		// warnings (an unreachable bootstrap peer) and lifecycle lines.
		// libp2p's loggers stay at error unless GOLOG_LOG_LEVEL says more.
		_ = logging.SetLogLevelRegex("^peernode/", "info")
	}
	fs, common := newFlagSet(env, "daemon", daemonUsage)
	var sf settingsFlags
	sf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return err
	}
	cfg, s, firstStart, err := daemonConfig(env, fs, &sf, common.dataDir)
	if err != nil {
		return err
	}
	n, err := node.New(cfg)
	if err != nil {
		return explainStartError(err)
	}
	if err := n.Start(); err != nil {
		_ = n.Close()
		return explainStartError(err)
	}
	// Saved only once the node runs, so a start that fails leaves no config
	// file recording settings that did not work.
	if firstStart {
		if err := saveSettings(common.dataDir, s); err != nil {
			_ = n.Close()
			return fmt.Errorf("write the config file: %w", err)
		}
	}
	printBanner(env.stdout, n, firstStart)
	return waitAndClose(env, n)
}

// daemonConfig merges defaults, the config file and the flags, resolves the
// secret and validates the result, all before anything is written.
func daemonConfig(env *cliEnv, fs *flag.FlagSet, sf *settingsFlags, dataDir string) (node.Config, settings, bool, error) {
	s, exists, err := loadSettings(dataDir)
	if err != nil {
		return node.Config{}, s, false, err
	}
	set := flagsSet(fs)
	sf.apply(&s, set)
	secret, err := resolveSecret(env, set, sf.secret)
	if err != nil {
		return node.Config{}, s, false, err
	}
	cfg, err := nodeConfig(dataDir, s, secret)
	return cfg, s, !exists, err
}

// resolveSecret returns the secret given by --secret or $PEERNODE_SECRET,
// or nil when the settings' secret file (or none) applies. Precedence:
// flags, then the environment, then the config file.
func resolveSecret(env *cliEnv, set map[string]bool, flagSecret string) ([]byte, error) {
	switch {
	case set["secret"] && set["secret-file"]:
		return nil, usagef("give the secret once: --secret-file or --secret, not both")
	case set["secret"]:
		warnf(env, "--secret makes the secret visible in the process list; prefer --secret-file or $%s", secretEnv)
		if strings.TrimSpace(flagSecret) == "" {
			return nil, usagef("--secret is empty")
		}
		return []byte(strings.TrimSpace(flagSecret)), nil
	case set["secret-file"]:
		return nil, nil
	}
	if v := strings.TrimSpace(env.getenv(secretEnv)); v != "" {
		return []byte(v), nil
	}
	return nil, nil
}

func warnf(env *cliEnv, format string, args ...any) {
	fmt.Fprintf(env.stderr, "peernode: warning: "+format+"\n", args...)
}

// explainStartError adds what the operator can do to the errors of a start.
func explainStartError(err error) error {
	var le *node.ListenError
	switch {
	case errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w\nAnother process (perhaps another peernode) listens on that port: stop it, or choose another address with --listen", err)
	case errors.As(err, &le):
		return fmt.Errorf("%w\nCheck the address, or choose another with --listen", err)
	case errors.Is(err, api.ErrRemoteAddr):
		return usageError{fmt.Errorf("%w\nUse a loopback --api address, or pass --api-allow-remote", err)}
	case errors.Is(err, api.ErrListen) && errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w\nAnother process (perhaps another peernode daemon) uses that port: choose another with --api", err)
	case errors.Is(err, node.ErrInvalidConfig):
		return usageError{err}
	}
	return err
}

func printBanner(w io.Writer, n *node.Node, firstStart bool) {
	cfg := n.Config()
	fmt.Fprintf(w, "peernode %s daemon\n", node.Version)
	fmt.Fprintf(w, "node ID:   %s\n", n.ID())
	fmt.Fprintf(w, "name:      %s\n", cfg.Name)
	switch {
	case cfg.Network.Private && cfg.Pnet:
		fmt.Fprintf(w, "network:   private %s (secret fingerprint %s)\n", cfg.Network.ID, cfg.Network.Fingerprint)
	case cfg.Network.Private:
		fmt.Fprintf(w, "network:   private %s (secret fingerprint %s; pnet off: TCP and QUIC, members proven by the handshake)\n",
			cfg.Network.ID, cfg.Network.Fingerprint)
	default:
		fmt.Fprintf(w, "network:   public %s (no secret: anyone may join)\n", cfg.Network.ID)
	}
	fmt.Fprintf(w, "trust:     %s (role %s)\n", cfg.Trust, cfg.Role)
	fmt.Fprintln(w, "addresses (give one to another node as --bootstrap):")
	for _, a := range n.Addrs() {
		fmt.Fprintf(w, "  %s\n", a)
	}
	if addr := n.APIAddr(); addr != "" {
		fmt.Fprintf(w, "API:       http://%s (token in %s)\n", addr, filepath.Join(cfg.DataDir, api.TokenFileName))
		fmt.Fprintf(w, "web page:  http://%s/ (peernode webui prints a one-time login link)\n", addr)
	}
	if addr := n.MetricsAddr(); addr != "" {
		fmt.Fprintf(w, "metrics:   http://%s/metrics (no token)\n", addr)
	}
	fmt.Fprintf(w, "data dir:  %s\n", cfg.DataDir)
	if firstStart {
		fmt.Fprintf(w, "first start: settings saved in %s\n", filepath.Join(cfg.DataDir, configFileName))
	}
	fmt.Fprintln(w, "ready")
}

// waitAndClose runs until SIGINT or SIGTERM, then closes the node within
// shutdownTimeout. A second signal exits at once.
func waitAndClose(env *cliEnv, n *node.Node) error {
	sigs, stop := stopSignals(env)
	defer stop()
	sig := <-sigs
	fmt.Fprintf(env.stdout, "received %v, shutting down\n", sig)
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shut down: %w", err)
		}
		fmt.Fprintln(env.stdout, "stopped")
		return nil
	case <-sigs:
		return errors.New("second signal: exiting without a clean shutdown")
	case <-time.After(shutdownTimeout):
		return fmt.Errorf("shutdown took longer than %s: exiting anyway", shutdownTimeout)
	}
}

const daemonUsage = `daemon [flags]

Runs a node in the foreground until SIGINT or SIGTERM. Settings come from the
defaults, the config file config.json in the data directory (written on the
first start), the environment and these flags, in increasing precedence.

Examples:
  peernode daemon                                             the public network, on the defaults
  peernode daemon --secret-file ~/cluster.secret --bootstrap /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...
  peernode daemon --trust manual --storage-max 50GiB --metrics 127.0.0.1:9101`

// stopSignals delivers SIGINT and SIGTERM (or env's stand-in for them)
// until stop is called.
func stopSignals(env *cliEnv) (sigs <-chan os.Signal, stop func()) {
	if env.signals != nil {
		return env.signals, func() {}
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}
