// Package test holds helpers that start real peernode nodes and bare libp2p
// hosts on 127.0.0.1, with ephemeral ports and temporary data directories
// removed when the test ends, plus the integration tests and benchmarks that
// use them.
package test
