// Package scoring rates peers by latency, reliability, freshness and
// misbehaviour, explains every score, and ranks candidates for routing:
// storage replicas and holders, the connection manager's protected
// connections, GossipSub's application score and `peernode peers`.
//
// A Book holds the samples: RTTs (pings, the handshake, requests), request
// outcomes with exponentially decayed counts and a prior, announcement
// freshness, a decaying penalty and the GossipSub score. Failures are held
// for a short window, and dropped when most peers fail together (a local
// fault, not theirs). The Pinger feeds it from libp2p's ping. The package
// imports nothing else of peernode: node wires it in.
package scoring
