package discovery

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Traffic is what GossipSub sent and received: every RPC (announcements,
// gossip and mesh control) with its length prefix. The announcer's
// GossipSub carries nothing else, so this is the cost of announcing.
type Traffic struct {
	SentBytes, RecvBytes uint64
	SentRPCs, RecvRPCs   uint64
	// DroppedRPCs were not sent because the peer's outbound queue was
	// full; Throttled messages were dropped unvalidated because the
	// validation queue was full: both are load shed under overload.
	DroppedRPCs, Throttled uint64
}

// trafficTracer is a pubsub raw tracer that counts RPC bytes, and tells
// which peers one watched message (our leaving announcement) was handed to.
type trafficTracer struct {
	sentBytes, recvBytes, sent, recv atomic.Uint64
	dropped, throttled               atomic.Uint64

	watchMu   sync.Mutex
	watchData []byte
	watchSent map[peer.ID]bool
	watchCh   chan struct{} // a new peer got the watched message
}

// watch starts recording which peers the message carrying data is sent to.
func (t *trafficTracer) watch(data []byte) <-chan struct{} {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	t.watchData, t.watchSent, t.watchCh = data, map[peer.ID]bool{}, make(chan struct{}, 1)
	return t.watchCh
}

// sentToAll reports whether the watched message was handed to every peer.
func (t *trafficTracer) sentToAll(peers []peer.ID) bool {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	for _, p := range peers {
		if !t.watchSent[p] {
			return false
		}
	}
	return true
}

func (t *trafficTracer) noteWatched(rpc *pubsub.RPC, p peer.ID) {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	if t.watchData == nil || t.watchSent[p] {
		return
	}
	for _, m := range rpc.GetPublish() {
		if bytes.Equal(m.GetData(), t.watchData) {
			t.watchSent[p] = true
			select {
			case t.watchCh <- struct{}{}:
			default:
			}
			return
		}
	}
}

func rpcBytes(rpc *pubsub.RPC) uint64 {
	n := proto.Size(&rpc.RPC)
	return uint64(n + protowire.SizeVarint(uint64(n)))
}

func (t *trafficTracer) SendRPC(rpc *pubsub.RPC, p peer.ID) {
	t.sentBytes.Add(rpcBytes(rpc))
	t.sent.Add(1)
	t.noteWatched(rpc, p)
}

func (t *trafficTracer) RecvRPC(rpc *pubsub.RPC) {
	t.recvBytes.Add(rpcBytes(rpc))
	t.recv.Add(1)
}

func (t *trafficTracer) snapshot() Traffic {
	return Traffic{SentBytes: t.sentBytes.Load(), RecvBytes: t.recvBytes.Load(), SentRPCs: t.sent.Load(), RecvRPCs: t.recv.Load(),
		DroppedRPCs: t.dropped.Load(), Throttled: t.throttled.Load()}
}

func (t *trafficTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *trafficTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *trafficTracer) Join(string)                              {}
func (t *trafficTracer) Leave(string)                             {}
func (t *trafficTracer) Graft(peer.ID, string)                    {}
func (t *trafficTracer) Prune(peer.ID, string)                    {}
func (t *trafficTracer) ValidateMessage(*pubsub.Message)          {}
func (t *trafficTracer) DeliverMessage(*pubsub.Message)           {}
func (t *trafficTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull || reason == pubsub.RejectValidationThrottled {
		t.throttled.Add(1)
	}
}
func (t *trafficTracer) DuplicateMessage(*pubsub.Message)     {}
func (t *trafficTracer) ThrottlePeer(peer.ID)                 {}
func (t *trafficTracer) DropRPC(*pubsub.RPC, peer.ID)         { t.dropped.Add(1) }
func (t *trafficTracer) UndeliverableMessage(*pubsub.Message) {}

// scoreBoard keeps the last GossipSub peer scores pubsub reported.
type scoreBoard struct {
	mu     sync.Mutex
	scores map[peer.ID]float64
}

func (b *scoreBoard) set(s map[peer.ID]float64) {
	b.mu.Lock()
	b.scores = s
	b.mu.Unlock()
}

func (b *scoreBoard) get(p peer.ID) (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.scores[p]
	return s, ok
}

// scoreInspectPeriod is how often pubsub reports its peer scores.
const scoreInspectPeriod = 500 * time.Millisecond
