package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1234": 1234, "10B": 10, "1KiB": 1024, "1.5 GiB": 3 << 29, "8GiB": 8 << 30,
		"500MB": 500e6, "2gb": 2e9, "3M": 3 << 20, " 7 kb ": 7000,
	} {
		got, err := parseByteSize(in)
		require.NoError(t, err, in)
		require.EqualValues(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "GiB", "12 parsecs", "1e400", "9999999TiB", "1.2.3"} {
		_, err := parseByteSize(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "8GiB", byteSize(8<<30).String())
	require.Equal(t, "1000", byteSize(1000).String())
	var b byteSize
	require.NoError(t, b.UnmarshalText([]byte("64MiB")))
	require.EqualValues(t, 64<<20, b)
}
