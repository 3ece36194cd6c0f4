package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
)

// asyncEmitter emits peer events in order from its own goroutine. The
// registry records most changes inside libp2p's notifiee callbacks, which
// must not block; the event bus blocks an emitter while any subscriber's
// buffer is full, and a subscriber may itself be waiting on the swarm (a
// connection closing, so a callback returning). Queueing breaks that
// cycle. The queue is unbounded, but holds one small event per change.
type asyncEmitter struct {
	em   event.Emitter
	mu   sync.Mutex
	cond *sync.Cond
	q    []any
	done bool
	wg   sync.WaitGroup
}

func newAsyncEmitter(em event.Emitter) *asyncEmitter {
	a := &asyncEmitter{em: em}
	a.cond = sync.NewCond(&a.mu)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.loop()
	}()
	return a
}

// Emit queues e; it never blocks.
func (a *asyncEmitter) Emit(e any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.done {
		a.q = append(a.q, e)
		a.cond.Signal()
	}
	return nil
}

func (a *asyncEmitter) loop() {
	for {
		a.mu.Lock()
		for len(a.q) == 0 && !a.done {
			a.cond.Wait()
		}
		if a.done {
			a.mu.Unlock()
			return
		}
		e := a.q[0]
		a.q[0] = nil
		a.q = a.q[1:]
		a.mu.Unlock()
		if err := a.em.Emit(e); err != nil {
			log.Debugw("emit peer event", "err", err)
		}
	}
}

// Close drops what is still queued (the node is going away), stops the
// goroutine and closes the underlying emitter.
func (a *asyncEmitter) Close() error {
	a.mu.Lock()
	a.done = true
	a.q = nil
	a.cond.Signal()
	a.mu.Unlock()
	a.wg.Wait()
	return a.em.Close()
}
