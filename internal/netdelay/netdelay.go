// Package netdelay adds latency to TCP connections in-process, for the
// demo and tests (this machine has no netem): a wrapped connection
// delivers everything it writes a fixed delay later, in order.
package netdelay

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// queueLen bounds the writes in flight on one connection; a writer that
// runs further ahead waits, as on a full socket buffer.
const queueLen = 1024

// Dialer returns a libp2p TCP dialer whose connections delay what they send
// by d: a round trip over them takes d longer.
func Dialer(d time.Duration) tcp.DialerForAddr {
	return func(ma.Multiaddr) (tcp.ContextDialer, error) { return dialer{d: d}, nil }
}

type dialer struct{ d time.Duration }

func (dl dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return Wrap(c, dl.d), nil
}

// Wrap delays what c sends by d.
func Wrap(c net.Conn, d time.Duration) net.Conn {
	dc := &conn{Conn: c, d: d, q: make(chan chunk, queueLen), flushed: make(chan struct{})}
	go dc.send()
	return dc
}

type conn struct {
	net.Conn
	d       time.Duration
	q       chan chunk
	flushed chan struct{} // closed when send has written or dropped the queue

	mu     sync.Mutex
	closed bool
	err    error
}

type chunk struct {
	b  []byte
	at time.Time
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.err != nil {
		return 0, c.err
	}
	c.q <- chunk{b: append([]byte(nil), p...), at: time.Now().Add(c.d)}
	return len(p), nil
}

// send writes each chunk when its time comes, until the queue is closed.
func (c *conn) send() {
	defer close(c.flushed)
	for ch := range c.q {
		if c.failed() {
			continue
		}
		time.Sleep(time.Until(ch.at))
		if _, err := c.Conn.Write(ch.b); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
	}
}

func (c *conn) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// Close sends what is queued (at most d later), then closes.
func (c *conn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.q)
	}
	c.mu.Unlock()
	<-c.flushed
	return c.Conn.Close()
}
