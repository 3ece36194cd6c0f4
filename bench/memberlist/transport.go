package main

import (
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport is memberlist's NetTransport on an ephemeral
// 127.0.0.1 port, counting every payload byte it sends: UDP packets, and
// writes on TCP streams it dials or accepts.
type countingTransport struct {
	nt      *memberlist.NetTransport
	sent    atomic.Uint64
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(logger *log.Logger) (*countingTransport, error) {
	var (
		nt  *memberlist.NetTransport
		err error
	)
	// Port 0 picks a free TCP port and binds UDP on the same number, which
	// can race with another process: memberlist itself retries, so do we.
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: logger,
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("net transport: %w", err)
	}
	t := &countingTransport{nt: nt, streams: make(chan net.Conn), done: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.forwardStreams()
	}()
	return t, nil
}

func (t *countingTransport) port() int { return t.nt.GetAutoBindPort() }

// forwardStreams hands accepted streams to memberlist, wrapped so that
// what memberlist answers on them is counted. It exits on Shutdown.
func (t *countingTransport) forwardStreams() {
	for {
		select {
		case <-t.done:
			return
		case c := <-t.nt.StreamCh():
			select {
			case t.streams <- &countingConn{Conn: c, sent: &t.sent}:
			case <-t.done:
				_ = c.Close()
				return
			}
		}
	}
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.nt.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	at, err := t.nt.WriteToAddress(b, addr)
	if err == nil {
		t.sent.Add(uint64(len(b)))
	}
	return at, err
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.nt.PacketCh() }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.nt.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, sent: &t.sent}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes the listeners and stops forwarding streams. It is safe
// to call more than once.
func (t *countingTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		err = t.nt.Shutdown()
		close(t.done)
		t.wg.Wait()
	})
	return err
}

// countingConn counts the bytes written to a stream.
type countingConn struct {
	net.Conn
	sent *atomic.Uint64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(uint64(n))
	return n, err
}
