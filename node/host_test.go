package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/stretchr/testify/require"
)

func systemLimit(t *testing.T, rm network.ResourceManager) rcmgr.Limit {
	t.Helper()
	var lim rcmgr.Limit
	require.NoError(t, rm.ViewSystem(func(s network.ResourceScope) error {
		lim = s.(rcmgr.ResourceScopeLimiter).Limit()
		return nil
	}))
	return lim
}

// The configured limits reach libp2p's resource manager, so a node can be
// raised to hold thousands of connections.
func TestResourceLimitsApplied(t *testing.T) {
	rm, err := NewResourceManager(Limits{Conns: 5000, Streams: 40000, Memory: 2 << 30, FD: 6000})
	require.NoError(t, err)
	defer rm.Close()
	lim := systemLimit(t, rm)
	require.Equal(t, 5000, lim.GetConnTotalLimit())
	require.Equal(t, 5000, lim.GetConnLimit(network.DirInbound))
	require.Equal(t, 5000, lim.GetConnLimit(network.DirOutbound))
	require.Equal(t, 40000, lim.GetStreamTotalLimit())
	require.Equal(t, int64(2<<30), lim.GetMemoryLimit())
	require.Equal(t, 6000, lim.GetFDLimit())

	// Zero keeps libp2p's autoscaled default.
	def, err := NewResourceManager(Limits{})
	require.NoError(t, err)
	defer def.Close()
	require.Positive(t, systemLimit(t, def).GetConnTotalLimit())
}
