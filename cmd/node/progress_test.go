package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressShownOnlyWhenUseful(t *testing.T) {
	var w bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	require.Nil(t, newProgress(&w, false, "put", 1<<30, clk.now), "not a terminal")
	require.Nil(t, newProgress(&w, true, "put", progressMinBytes-1, clk.now), "small")
	require.Nil(t, newProgress(&w, true, "put", 0, clk.now), "empty")
	require.NotNil(t, newProgress(&w, true, "put", progressMinBytes, clk.now))
	require.NotNil(t, newProgress(&w, true, "put", -1, clk.now), "unknown size")

	// No bar: everything passes through, nothing is drawn.
	var p *progress
	r := strings.NewReader("abc")
	require.Same(t, io.Reader(r), p.reader(r))
	require.Same(t, io.Writer(&w), p.writer(&w))
	p.finish()
	require.Zero(t, w.Len())
}

func TestProgressDraws(t *testing.T) {
	var w bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	total := int64(16 << 20)
	p := newProgress(&w, true, "get", total, clk.now)
	var sink countWriter
	dst := p.writer(&sink)

	chunk := make([]byte, 1<<20)
	// The first write draws at once.
	clk.t = clk.t.Add(time.Second)
	_, err := dst.Write(chunk)
	require.NoError(t, err)
	require.Equal(t, "\rget [#                       ]   6%  1.0 MiB / 16.0 MiB  1.0 MiB/s\x1b[K", w.String())

	// Writes within the interval do not redraw.
	w.Reset()
	for range 3 {
		clk.t = clk.t.Add(progressInterval / 4)
		_, err = dst.Write(chunk)
		require.NoError(t, err)
	}
	require.Zero(t, w.Len(), "redrawn within %s", progressInterval)
	clk.t = clk.t.Add(progressInterval)
	_, err = dst.Write(chunk)
	require.NoError(t, err)
	require.Contains(t, w.String(), "  31%  5.0 MiB / 16.0 MiB  ")

	// Finishing draws the last state and ends the line, once.
	w.Reset()
	clk.t = time.Unix(1008, 0)
	_, err = io.Copy(dst, bytes.NewReader(make([]byte, 11<<20)))
	require.NoError(t, err)
	w.Reset()
	p.finish()
	require.Equal(t, "\rget [########################] 100%  16.0 MiB / 16.0 MiB  2.0 MiB/s\x1b[K\n", w.String())
	p.finish()
	_, err = dst.Write(chunk)
	require.NoError(t, err)
	require.Equal(t, "\rget [########################] 100%  16.0 MiB / 16.0 MiB  2.0 MiB/s\x1b[K\n", w.String(), "nothing after the end")
	require.Equal(t, 17<<20, int(sink), "every byte passes through")
}

// countWriter counts what is written to it.
type countWriter int

func (w *countWriter) Write(b []byte) (int, error) {
	*w += countWriter(len(b))
	return len(b), nil
}

func TestProgressUnknownSize(t *testing.T) {
	var w bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newProgress(&w, true, "put", -1, clk.now)
	src := p.reader(bytes.NewReader(make([]byte, 3<<20)))
	clk.t = clk.t.Add(2 * time.Second)
	n, err := io.Copy(io.Discard, src)
	require.NoError(t, err)
	require.Equal(t, int64(3<<20), n)
	w.Reset()
	p.finish()
	require.Equal(t, "\rput 3.0 MiB  1.5 MiB/s\x1b[K\n", w.String())

	// No time elapsed: no rate yet.
	w.Reset()
	p = newProgress(&w, true, "put", -1, clk.now)
	p.finish()
	require.Equal(t, "\rput 0 B  -\x1b[K\n", w.String())
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{300 << 10, "300.0 KiB"},
		{8 << 20, "8.0 MiB"},
		{5 << 30, "5.0 GiB"},
		{3 << 40, "3.0 TiB"},
		{1<<63 - 1, "8.0 EiB"},
	} {
		require.Equal(t, tt.want, humanBytes(tt.n), "%d", tt.n)
	}
}
