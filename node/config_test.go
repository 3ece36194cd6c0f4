package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	require.Equal(t, DefaultAPIAddr, c.APIAddr)
	require.False(t, c.Network.Private)
	require.Len(t, c.ListenAddrs, 4)
	lc := LocalTestConfig(t.TempDir())
	require.NoError(t, lc.Validate())
}

func TestConfigValidate(t *testing.T) {
	priv, err := DeriveNetwork([]byte("sixteen byte secret"))
	require.NoError(t, err)
	cases := []struct {
		name   string
		change func(c *Config)
		want   string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data directory"},
		{"no listen", func(c *Config) { c.ListenAddrs = nil }, "listen"},
		{"no network", func(c *Config) { c.Network = Network{} }, "network"},
		{"low above high", func(c *Config) { c.ConnMgrLow, c.ConnMgrHigh = 10, 5 }, "water marks"},
		{"high above conns", func(c *Config) { c.ConnMgrHigh, c.Limits.Conns = 2000, 1000 }, "exceeds the connection limit"},
		{"thousands of conns", func(c *Config) { c.ConnMgrLow, c.ConnMgrHigh, c.Limits.Conns = 4000, 4500, 5000 }, ""},
		{"negative limit", func(c *Config) { c.Limits.Streams = -1 }, "negative"},
		{"bad back-off", func(c *Config) { c.BootstrapBackoffMax = c.BootstrapBackoffMin / 2 }, "back-off"},
		{"zero dial timeout", func(c *Config) { c.DialTimeout = 0 }, "dial timeout"},
		{"bootstrap without address", func(c *Config) { c.Bootstrap = []peer.AddrInfo{{ID: "x"}} }, "bootstrap"},
		{"private with QUIC only", func(c *Config) {
			c.Network = priv
			c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
		}, "TCP"},
		{"private with defaults", func(c *Config) { c.Network = priv }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, time.Minute
	cases := []struct {
		failures int
		u        float64
		want     time.Duration
	}{
		{0, 0.5, time.Second},
		{1, 0.5, 2 * time.Second},
		{3, 0.5, 8 * time.Second},
		{6, 0.5, time.Minute},
		{1000, 0.5, time.Minute},
		{0, 0, 800 * time.Millisecond},
		{6, 0.999999, 72 * time.Second},
	}
	for _, tc := range cases {
		got := backoff(tc.failures, lo, hi, tc.u)
		require.InDelta(t, float64(tc.want), float64(got), float64(time.Millisecond), "failures=%d u=%v", tc.failures, tc.u)
	}
}

func TestParseBootstrap(t *testing.T) {
	const id = "12D3KooWK7eKQbNxxDyLepMswWHnDmD5YmGU6kNdUqbjsSxq5xUi"
	infos, err := ParseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + id,
		"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + id,
	})
	require.NoError(t, err)
	require.Len(t, infos, 1, "addresses of one peer merge")
	require.Len(t, infos[0].Addrs, 2)

	for _, bad := range []string{
		"",
		"not-a-multiaddr",
		"/ip4/127.0.0.1/tcp/4001",
		"/ip4/127.0.0.1/tcp/4001/p2p/notanid",
		"/p2p/" + id,
		"/ip4/999.0.0.1/tcp/1/p2p/" + id,
	} {
		_, err := ParseBootstrap([]string{bad})
		require.ErrorIs(t, err, ErrBadBootstrap, "%q", bad)
	}
}

// ParseBootstrap reads operator input: whatever it is given, it answers
// with infos or an ErrBadBootstrap, never a panic.
func FuzzParseBootstrap(f *testing.F) {
	f.Add("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWK7eKQbNxxDyLepMswWHnDmD5YmGU6kNdUqbjsSxq5xUi")
	f.Add("/ip6/::1/udp/1/quic-v1/p2p/12D3KooWK7eKQbNxxDyLepMswWHnDmD5YmGU6kNdUqbjsSxq5xUi")
	f.Add("/dns4/example.com/tcp/1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		infos, err := ParseBootstrap([]string{s})
		if err != nil {
			require.ErrorIs(t, err, ErrBadBootstrap)
			return
		}
		for _, ai := range infos {
			require.NotEmpty(t, ai.ID)
			require.NotEmpty(t, ai.Addrs)
		}
	})
}
