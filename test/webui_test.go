package test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/api"
	"peernode/node"
	"peernode/protocols/handshake"
)

// browserTimeout bounds a browser test: starting Chromium and every wait.
const browserTimeout = 60 * time.Second

// startBrowser starts headless Chromium (Debian's chromium, which .ci/run
// installs) and returns a context for a tab; the browser is stopped when
// the test ends. Without a browser on the PATH the test is skipped.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on the PATH: .ci/run installs Debian's chromium " +
			"(apt-get install -y chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
	})
	require.NoError(t, chromedp.Do(ctx), "start %s", path)
	return ctx
}

// webuiRow selects a member's row on the page, with a given status if not
// empty.
func webuiRow(p peer.ID, status string) string {
	s := fmt.Sprintf(`#members-body tr[data-node="%s"]`, p)
	if status != "" {
		s += fmt.Sprintf(`[data-status="%s"]`, status)
	}
	return s
}

// browserDo runs actions in the browser tab, failing the test on an error.
func browserDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// browserValue runs one action in the browser tab and returns its value.
func browserValue[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// browserText is the visible text of the element sel selects.
func browserText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return browserValue(t, ctx, chromedp.Text(chromedp.CSS(sel)))
}

// The web page of a node with two verified members and one awaiting
// approval: a one-time link logs in, once; the login form takes the token;
// approving the pending node from the page makes it verified on both sides.
func TestWebUIApproveFromPage(t *testing.T) {
	t.Parallel()
	ctx := startBrowser(t)

	cfg := Config(t, "admin")
	cfg.Trust = handshake.PolicyManual
	a := StartNode(t, cfg)
	b := StartNode(t, Config(t, "bravo"))
	c := StartNode(t, Config(t, "charlie"))
	_, err := a.Allow(b.ID(), "known ahead")
	require.NoError(t, err)
	connect(t, b, a)
	connect(t, c, a)
	WaitVerified(t, a, b.ID())
	WaitStatus(t, a, c.ID(), node.StatusPending)

	tok, err := api.ReadToken(a.Config().DataDir)
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	link, err := api.NewClient(a.APIAddr(), tok).WebUILink(cctx)
	require.NoError(t, err)

	// The one-time link logs in: the page shows the node and its members.
	browserDo(t, ctx,
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS(webuiRow(b.ID(), "verified"))),
		chromedp.WaitVisible(chromedp.CSS(webuiRow(c.ID(), "pending"))),
	)
	require.Equal(t, a.ID().String(), browserText(t, ctx, "#node-id"))
	require.Equal(t, "public", browserText(t, ctx, "#network-kind"))
	require.Equal(t, "admin", browserText(t, ctx, "#node-name"))

	// Logged out, the link does not work again.
	browserDo(t, ctx,
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	require.Contains(t, browserText(t, ctx, "#login-error"), "used already or has expired")

	// The login form: a wrong token, then the right one.
	browserDo(t, ctx,
		chromedp.Navigate("http://"+a.APIAddr()+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	require.Contains(t, browserText(t, ctx, "#login-error"), "Wrong token")
	approve := fmt.Sprintf(`button[data-approve="%s"]`, c.ID())
	browserDo(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(webuiRow(b.ID(), "verified"))),
		chromedp.WaitVisible(chromedp.CSS(approve)),
	)
	require.Equal(t, "charlie", browserText(t, ctx, fmt.Sprintf(`#pending-body tr[data-pending="%s"] td.name`, c.ID())))

	// Approve from the page: verified on both sides, and the page says so.
	browserDo(t, ctx, chromedp.Click(chromedp.CSS(approve)))
	WaitVerified(t, a, c.ID())
	WaitVerified(t, c, a.ID())
	browserDo(t, ctx,
		chromedp.WaitVisible(chromedp.CSS(webuiRow(c.ID(), "verified"))),
		chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf(`tr[data-pending="%s"]`, c.ID()))),
		chromedp.WaitVisible(chromedp.CSS("#pending-empty")),
	)
}

// webuiBackend is a Backend with many peers, one of them named with HTML,
// and one pending request; only the routes the page uses are served.
type webuiBackend struct {
	api.Backend // nil: the page calls nothing else
	peers       []api.PeerInfo
	pending     []api.PendingRequest
	// decisions receives each trust action.
	decisions chan<- webuiDecision
}

type webuiDecision struct {
	action api.TrustAction
	node   peer.ID
	reason string
}

func (m webuiBackend) ID() api.IDInfo {
	return api.IDInfo{NodeID: "12D3KooWself", Name: "big", NetworkID: "abcd", Private: true,
		SecretFingerprint: "602e-d6b6", Addrs: []string{}, Version: node.Version}
}

func (m webuiBackend) Peers() []api.PeerInfo { return m.peers }

func (m webuiBackend) Pending() []api.PendingRequest { return m.pending }

func (m webuiBackend) TrustAction(action api.TrustAction, p peer.ID, reason string) (api.TrustRecord, error) {
	select {
	case m.decisions <- webuiDecision{action, p, reason}:
	default: // a second decision: the test sees the first
	}
	return api.TrustRecord{NodeID: p.String(), Decision: "deny", Reason: reason, Created: time.Now()}, nil
}

// webuiHostileName would run script if the page injected names as HTML.
const webuiHostileName = `<img src=x onerror="document.title='pwned'">`

// The page stays usable with 500 members: every row renders, the filter
// narrows them, a refresh keeps the rows it does not need to change, and
// names are shown as text. Rejecting a pending node asks for a reason.
func TestWebUIManyMembers(t *testing.T) {
	t.Parallel()
	ctx := startBrowser(t)
	const n = 500
	peers := make([]api.PeerInfo, n)
	for i := range peers {
		peers[i] = api.PeerInfo{NodeID: fmt.Sprintf("12D3KooWfake%04d", i), Status: api.PeerStatusVerified,
			Name: fmt.Sprintf("member-%03d", i), Role: "full", Version: node.Version, Connected: true,
			Score: float64(i) / n, Reliability: 0.75, LastHeard: time.Now()}
	}
	peers[7].Name = webuiHostileName
	const joiner = "12D3KooWJhHgZy4DVUv3wp89WCTonoHy4ce4dZ15VER38HUtTsrz"
	pending := []api.PendingRequest{{NodeID: joiner, Name: "joiner", Role: "full", Version: node.Version,
		Justification: "lab box 7", Since: time.Now(), Expires: time.Now().Add(time.Hour)}}
	decisions := make(chan webuiDecision, 1)
	ln, err := api.Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	srv := api.NewServer(webuiBackend{peers: peers, pending: pending, decisions: decisions}, "tok")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, <-done)
	})
	cctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	link, err := api.NewClient(ln.Addr().String(), "tok").WebUILink(cctx)
	require.NoError(t, err)

	shown := chromedp.Evaluate[int](`document.querySelectorAll("#members-body tr:not([hidden])").length`)
	browserDo(t, ctx,
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS(`#members-body tr[data-node="12D3KooWfake0499"]`)),
		chromedp.WaitVisible(chromedp.CSS("#blobs-empty")),
	)
	require.Equal(t, n, browserValue(t, ctx, shown))
	require.Equal(t, "500", browserText(t, ctx, "#members-count"))
	require.Equal(t, webuiHostileName, browserText(t, ctx, `#members-body tr[data-node="12D3KooWfake0007"] td.name`), "a name is text, not HTML")
	require.Contains(t, browserText(t, ctx, "#blobs-empty"), "does not store blobs")
	require.Equal(t, "private", browserText(t, ctx, "#network-kind"))
	require.Equal(t, "602e-d6b6", browserText(t, ctx, "#secret-fingerprint"))
	// The first row is the best score, as the API sorts.
	first := browserValue(t, ctx, chromedp.AttributeValue(chromedp.CSS("#members-body tr:first-child"), "data-node"))
	require.Equal(t, "12D3KooWfake0499", first.Value)

	// The filter narrows the rows to member-420 to member-429.
	browserDo(t, ctx, chromedp.SendKeys(chromedp.CSS("#filter"), "member-42"))
	require.Equal(t, 10, browserValue(t, ctx, shown))
	require.Equal(t, "10 of 500", browserText(t, ctx, "#members-count"))

	// A refresh keeps the rows whose data did not change, and the filter.
	status := browserText(t, ctx, "#status-line")
	browserDo(t, ctx,
		chromedp.Evaluate[chromedp.Void](`window.kept = document.querySelector('tr[data-node="12D3KooWfake0420"]')`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("status-line").textContent !== %q`, status)),
	)
	require.True(t, browserValue(t, ctx, chromedp.Evaluate[bool](
		`window.kept === document.querySelector('tr[data-node="12D3KooWfake0420"]') && window.kept.isConnected`)),
		"the refresh rebuilt a row whose data did not change")
	require.Equal(t, 10, browserValue(t, ctx, shown))
	require.NotContains(t, browserValue(t, ctx, chromedp.Title()), "pwned", "the hostile name ran script")

	// Rejecting asks for a reason and sends it.
	require.Equal(t, "lab box 7", browserText(t, ctx, fmt.Sprintf(`tr[data-pending="%s"] td.justification`, joiner)))
	browserDo(t, ctx,
		chromedp.Evaluate[chromedp.Void](`window.prompt = () => "not one of ours"`),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-reject="%s"]`, joiner))),
	)
	select {
	case d := <-decisions:
		require.Equal(t, webuiDecision{api.ActionReject, webuiPeerID(t, joiner), "not one of ours"}, d)
	case <-time.After(WaitTimeout):
		t.Fatal("the page sent no decision")
	}
}

func webuiPeerID(t *testing.T, s string) peer.ID {
	t.Helper()
	p, err := peer.Decode(s)
	require.NoError(t, err)
	return p
}
