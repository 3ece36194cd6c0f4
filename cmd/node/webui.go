package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"peernode/api"
)

const webuiUsage = `webui [--json] [--data-dir DIR]

Prints a link that logs a browser into the running daemon's web page. The
page shows the node's identity and network, its members (status, role,
score, RTT, reliability, when last heard), the nodes awaiting approval
with buttons to approve or reject them, and the blobs the node holds; it
refreshes itself every few seconds.

The link works once, within 5 minutes; the browser then stays logged in
for 12 hours. Open it on the daemon's machine: the API listens on a
loopback address. Without a link, open the API's address in a browser
and log in with the token in the data directory's api.token.

Examples:
  peernode webui
  peernode webui --data-dir /tmp/pn-a
  peernode webui --json`

func runWebUI(env *cliEnv, args []string) error {
	fs, common := newFlagSet(env, "webui", webuiUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	link, err := c.WebUILink(ctx)
	var se *api.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusMethodNotAllowed) {
		return fmt.Errorf("the daemon on %s serves no web page: it runs an older peernode (peernode version shows it); "+
			"restart it with this one", common.dataDir)
	}
	if err != nil {
		return noDaemonHint(err, common.dataDir)
	}
	if common.json {
		return printJSON(env, link)
	}
	fmt.Fprintf(env.stdout, "Open this link in a browser on this machine; it logs in once, within %d minutes:\n\n  %s\n\n",
		int(api.LoginCodeTTL.Minutes()), link.URL)
	return nil
}
