package node

// Version is peernode's software version, reported by `peernode version`,
// the API and libp2p identify's agent string.
const Version = "0.1.0"
