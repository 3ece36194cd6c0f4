package netdelay

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWrapDelaysAndKeepsOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(s)
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	const d = 50 * time.Millisecond
	c := Wrap(raw, d)
	start := time.Now()
	for _, s := range []string{"one ", "two ", "three"} {
		_, err := c.Write([]byte(s))
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	require.GreaterOrEqual(t, time.Since(start), d, "close sends what is queued first")
	require.Equal(t, "one two three", string(<-got))
	_, err = c.Write([]byte("late"))
	require.ErrorIs(t, err, net.ErrClosed)
}
