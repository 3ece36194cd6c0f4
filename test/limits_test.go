package test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// The node's connection limit is enforced by the host: with room for a few
// connections, a crowd of strangers gets no more than that.
func TestConnectionLimitEnforced(t *testing.T) {
	t.Parallel()
	const limit, crowd = 4, 10
	cfg := Config(t, "small")
	cfg.Limits.Conns = limit
	cfg.ConnMgrLow, cfg.ConnMgrHigh = 2, limit
	n := StartNode(t, cfg)
	target := AddrInfo(n)

	results := make(chan error, crowd)
	for range crowd {
		h := NewHost(t)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
			defer cancel()
			results <- h.Connect(ctx, target)
		}()
	}
	ok := 0
	for range crowd {
		if <-results == nil {
			ok++
		}
	}
	require.Positive(t, ok)
	require.LessOrEqual(t, ok, limit)
	require.LessOrEqual(t, len(n.Host().Network().Conns()), limit)
}
