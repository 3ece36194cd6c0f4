package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every command's help says what it does and shows an example.
func TestEveryCommandHelpHasAnExample(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			env, _ := testEnv(nil)
			require.Equal(t, exitOK, run(env, []string{c.name, "--help"}))
			out := stdoutOf(env)
			require.Contains(t, out, "Usage: peernode "+c.name)
			require.Contains(t, out, "Examples:\n  peernode "+c.name)
		})
	}
}
