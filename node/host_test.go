package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/stretchr/testify/require"

	"peernode/protocols/handshake"
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

	// The handshake's service and protocol scopes admit a handshake on
	// every connection at once.
	for _, view := range []func(func(network.ResourceScope) error) error{
		func(f func(network.ResourceScope) error) error {
			return rm.ViewService(handshake.ServiceName, func(s network.ServiceScope) error { return f(s) })
		},
		func(f func(network.ResourceScope) error) error {
			return rm.ViewProtocol(handshake.ID, func(s network.ProtocolScope) error { return f(s) })
		},
	} {
		require.NoError(t, view(func(s network.ResourceScope) error {
			require.Equal(t, 5000, s.(rcmgr.ResourceScopeLimiter).Limit().GetStreamLimit(network.DirInbound))
			return nil
		}))
	}

	// Zero keeps libp2p's autoscaled default.
	def, err := NewResourceManager(Limits{})
	require.NoError(t, err)
	defer def.Close()
	require.Positive(t, systemLimit(t, def).GetConnTotalLimit())
}
