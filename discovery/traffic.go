package discovery

import (
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

// trafficTracer is a pubsub raw tracer that counts RPC bytes.
type trafficTracer struct {
	sentBytes, recvBytes, sent, recv atomic.Uint64
	dropped, throttled               atomic.Uint64
}

func rpcBytes(rpc *pubsub.RPC) uint64 {
	n := proto.Size(&rpc.RPC)
	return uint64(n + protowire.SizeVarint(uint64(n)))
}

func (t *trafficTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.sentBytes.Add(rpcBytes(rpc))
	t.sent.Add(1)
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
