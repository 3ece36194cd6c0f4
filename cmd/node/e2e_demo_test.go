package main

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// demoTimeout bounds the demo's story on a loaded machine.
const demoTimeout = 90 * time.Second

// `peernode demo --nodes 3` tells its story to the end, serves, and stops
// cleanly on SIGINT.
func TestDemoRunsToItsEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, peernodeBin, "demo", "--nodes", "3")
	cmd.Env = processEnv(nil)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitUntil(t, demoTimeout, func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("demo exited early (%v):\n%s\n%s", err, stdout.String(), stderr.String())
		default:
		}
		return strings.Contains(stdout.String(), "press Ctrl-C to stop"), "the demo did not reach its end:\n" + stdout.String()
	})
	out := stdout.String()
	for _, step := range []string{"handshake: node0 verified node1", "handshake: node0 verified node2", "members: each of the 3 nodes",
		"scores: node0 ranks", "put: a 1048576-byte blob", "get: ", "verified chunk by chunk", "crash: node2", "pruned: every other node dropped node2",
		"demo ready: node0's web page is at http://127.0.0.1:"} {
		require.Contains(t, out, step, "the story misses a step")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "demo exit:\n%s\n%s", stdout.String(), stderr.String())
	case <-time.After(stopTimeout):
		t.Fatalf("demo did not stop within %s of SIGINT", stopTimeout)
	}
	require.Contains(t, stdout.String(), "\nstopped\n")
}
