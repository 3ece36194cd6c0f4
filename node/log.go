package node

import (
	"log/slog"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

var log = logging.Logger("peernode/node")

// libp2p logs through log/slog. Route it, and any other slog user, into
// go-log so GOLOG_LOG_LEVEL and GOLOG_LOG_FMT govern every line the process
// writes. This must happen before libp2p logs anything: package init does.
func init() {
	h := logging.SlogHandler()
	gologshim.SetDefaultHandler(h)
	slog.SetDefault(slog.New(h))
}
