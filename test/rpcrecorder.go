package test

import (
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// rpcRecorder is a pubsub raw tracer that counts the RPCs a host receives
// carrying messages or gossip control (IHAVE, IWANT, GRAFT).
type rpcRecorder struct {
	mu  sync.Mutex
	out *[]*pubsub.RPC
}

func (r *rpcRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(*r.out)
}

func (r *rpcRecorder) RecvRPC(rpc *pubsub.RPC) {
	c := rpc.GetControl()
	if len(rpc.GetPublish()) == 0 && len(c.GetIhave()) == 0 && len(c.GetIwant()) == 0 && len(c.GetGraft()) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.out = append(*r.out, rpc)
}

func (r *rpcRecorder) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (r *rpcRecorder) OnClosedOutboundStream(peer.ID)           {}
func (r *rpcRecorder) Join(string)                              {}
func (r *rpcRecorder) Leave(string)                             {}
func (r *rpcRecorder) Graft(peer.ID, string)                    {}
func (r *rpcRecorder) Prune(peer.ID, string)                    {}
func (r *rpcRecorder) ValidateMessage(*pubsub.Message)          {}
func (r *rpcRecorder) DeliverMessage(*pubsub.Message)           {}
func (r *rpcRecorder) RejectMessage(*pubsub.Message, string)    {}
func (r *rpcRecorder) DuplicateMessage(*pubsub.Message)         {}
func (r *rpcRecorder) ThrottlePeer(peer.ID)                     {}
func (r *rpcRecorder) SendRPC(*pubsub.RPC, peer.ID)             {}
func (r *rpcRecorder) DropRPC(*pubsub.RPC, peer.ID)             {}
func (r *rpcRecorder) UndeliverableMessage(*pubsub.Message)     {}
