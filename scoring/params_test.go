package scoring_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peernode/scoring"
)

func TestDefaultParamsValidate(t *testing.T) {
	p := scoring.DefaultParams()
	require.NoError(t, p.Validate())
	b, err := scoring.NewBook(p, nil)
	require.NoError(t, err)
	require.Equal(t, p, b.Params())
}

// TestParamsValidateAccepts covers the edges Validate must still allow.
func TestParamsValidateAccepts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*scoring.Params)
	}{
		{"latency only", func(p *scoring.Params) {
			p.LatencyWeight, p.ReliabilityWeight, p.FreshnessWeight, p.PenaltyWeight = 1, 0, 0, 0
		}},
		{"equal weights", func(p *scoring.Params) {
			p.LatencyWeight, p.ReliabilityWeight, p.FreshnessWeight, p.PenaltyWeight = 0.25, 0.25, 0.25, 0.25
		}},
		{"alpha 1", func(p *scoring.Params) { p.RTTAlpha = 1 }},
		{"relayed factor 0", func(p *scoring.Params) { p.RelayedFactor = 0 }},
		{"no prior failures", func(p *scoring.Params) { p.PriorFailures = 0 }},
		{"fresh for 0", func(p *scoring.Params) { p.FreshFor = 0 }},
		{"fraction 1", func(p *scoring.Params) { p.LocalFaultFraction = 1 }},
		{"min peers 2", func(p *scoring.Params) { p.LocalFaultMinPeers = 2 }},
		{"never explore", func(p *scoring.Params) { p.ExploreEvery = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scoring.DefaultParams()
			tc.mutate(&p)
			require.NoError(t, p.Validate())
		})
	}
}

func TestParamsValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*scoring.Params)
	}{
		{"weights sum below 1", func(p *scoring.Params) { p.LatencyWeight = 0.25 }},
		{"weights sum above 1", func(p *scoring.Params) { p.LatencyWeight = 0.45 }},
		{"weights all 0", func(p *scoring.Params) {
			p.LatencyWeight, p.ReliabilityWeight, p.FreshnessWeight, p.PenaltyWeight = 0, 0, 0, 0
		}},
		{"negative weight summing to 1", func(p *scoring.Params) { p.LatencyWeight, p.ReliabilityWeight = -0.1, 0.8 }},
		{"weight above 1 summing to 1", func(p *scoring.Params) { p.LatencyWeight, p.ReliabilityWeight = 1.2, -0.5 }},
		{"NaN weight", func(p *scoring.Params) { p.FreshnessWeight = math.NaN() }},
		{"zero reference RTT", func(p *scoring.Params) { p.ReferenceRTT = 0 }},
		{"negative reference RTT", func(p *scoring.Params) { p.ReferenceRTT = -time.Millisecond }},
		{"alpha 0", func(p *scoring.Params) { p.RTTAlpha = 0 }},
		{"negative alpha", func(p *scoring.Params) { p.RTTAlpha = -0.3 }},
		{"alpha above 1", func(p *scoring.Params) { p.RTTAlpha = 1.5 }},
		{"negative relayed factor", func(p *scoring.Params) { p.RelayedFactor = -0.1 }},
		{"relayed factor above 1", func(p *scoring.Params) { p.RelayedFactor = 1.1 }},
		{"NaN relayed factor", func(p *scoring.Params) { p.RelayedFactor = math.NaN() }},
		{"zero reliability half-life", func(p *scoring.Params) { p.ReliabilityHalfLife = 0 }},
		{"negative penalty half-life", func(p *scoring.Params) { p.PenaltyHalfLife = -time.Minute }},
		{"zero prior successes", func(p *scoring.Params) { p.PriorSuccesses = 0 }},
		{"negative prior failures", func(p *scoring.Params) { p.PriorFailures = -1 }},
		{"fresh equals stale", func(p *scoring.Params) { p.FreshFor, p.StaleAfter = time.Minute, time.Minute }},
		{"fresh after stale", func(p *scoring.Params) { p.FreshFor, p.StaleAfter = 3*time.Minute, time.Minute }},
		{"negative fresh", func(p *scoring.Params) { p.FreshFor = -time.Second }},
		{"unheard freshness above 1", func(p *scoring.Params) { p.UnheardFreshness = 1.5 }},
		{"negative unheard freshness", func(p *scoring.Params) { p.UnheardFreshness = -0.5 }},
		{"zero gossip scale", func(p *scoring.Params) { p.GossipScoreScale = 0 }},
		{"zero local fault window", func(p *scoring.Params) { p.LocalFaultWindow = 0 }},
		{"zero local fault fraction", func(p *scoring.Params) { p.LocalFaultFraction = 0 }},
		{"local fault fraction above 1", func(p *scoring.Params) { p.LocalFaultFraction = 1.1 }},
		{"min peers 1", func(p *scoring.Params) { p.LocalFaultMinPeers = 1 }},
		{"min peers 0", func(p *scoring.Params) { p.LocalFaultMinPeers = 0 }},
		{"zero retention", func(p *scoring.Params) { p.Retention = 0 }},
		{"negative explore every", func(p *scoring.Params) { p.ExploreEvery = -1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scoring.DefaultParams()
			tc.mutate(&p)
			require.ErrorIs(t, p.Validate(), scoring.ErrBadParams)
			_, err := scoring.NewBook(p, nil)
			require.ErrorIs(t, err, scoring.ErrBadParams, "NewBook must validate")
		})
	}
}

// TestParamsValidateRejectsNonFinite: a config format that can spell NaN
// or Inf (TOML, YAML) must not get such values past Validate, since they
// turn every score into NaN or out of [0, 1].
func TestParamsValidateRejectsNonFinite(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*scoring.Params)
	}{
		{"NaN alpha", func(p *scoring.Params) { p.RTTAlpha = math.NaN() }},
		{"NaN prior successes", func(p *scoring.Params) { p.PriorSuccesses = math.NaN() }},
		{"Inf prior successes", func(p *scoring.Params) { p.PriorSuccesses = math.Inf(1) }},
		{"NaN prior failures", func(p *scoring.Params) { p.PriorFailures = math.NaN() }},
		{"NaN gossip scale", func(p *scoring.Params) { p.GossipScoreScale = math.NaN() }},
		{"NaN local fault fraction", func(p *scoring.Params) { p.LocalFaultFraction = math.NaN() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scoring.DefaultParams()
			tc.mutate(&p)
			require.ErrorIs(t, p.Validate(), scoring.ErrBadParams)
		})
	}
}

func TestPingConfigValidate(t *testing.T) {
	require.NoError(t, scoring.DefaultPingConfig().Validate())
	cases := []struct {
		name   string
		mutate func(*scoring.PingConfig)
	}{
		{"zero interval", func(c *scoring.PingConfig) { c.Interval = 0 }},
		{"negative interval", func(c *scoring.PingConfig) { c.Interval = -time.Second }},
		{"zero timeout", func(c *scoring.PingConfig) { c.Timeout = 0 }},
		{"negative timeout", func(c *scoring.PingConfig) { c.Timeout = -time.Second }},
		{"zero concurrency", func(c *scoring.PingConfig) { c.Concurrency = 0 }},
		{"negative concurrency", func(c *scoring.PingConfig) { c.Concurrency = -1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := scoring.DefaultPingConfig()
			tc.mutate(&c)
			require.ErrorIs(t, c.Validate(), scoring.ErrBadParams)
			_, err := scoring.NewPinger(nil, nil, nil, c)
			require.ErrorIs(t, err, scoring.ErrBadParams, "NewPinger must validate")
		})
	}
}
