package test

import (
	"testing"

	logging "github.com/ipfs/go-log/v2"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine running: every
// node's Close must stop everything it started.
func TestMain(m *testing.M) {
	// Connections with injected latency (internal/netdelay) hide the TCP
	// socket from libp2p's TCP transport, which logs an error for each
	// that it cannot set keep-alives on: expected, and noise in failures.
	_ = logging.SetLogLevel("tcp-tpt", "fatal")
	goleak.VerifyTestMain(m)
}
