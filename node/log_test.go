package node

import (
	"bufio"
	"strings"
	"testing"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/stretchr/testify/require"
)

// libp2p logs through gologshim (log/slog); this package routes it into
// go-log, so go-log's levels and outputs govern libp2p's lines too.
func TestLibp2pLogsGoThroughGoLog(t *testing.T) {
	r := logging.NewPipeReader()
	defer r.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	require.NoError(t, logging.SetLogLevel("peernode-logtest", "debug"))
	gologshim.Logger("peernode-logtest").Debug("routed through go-log", "k", "v")
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-lines:
			if strings.Contains(line, "routed through go-log") {
				require.Contains(t, line, "peernode-logtest")
				return
			}
		case <-timeout:
			t.Fatal("libp2p's slog line never reached go-log")
		}
	}
}
