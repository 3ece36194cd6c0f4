// Package discovery finds and tracks the members of a network. This part
// holds the signed announcements (announce.go: signing, decoding and the
// topic validator's pure decision) and the member table with per-member
// stale deadlines and persistence (members.go).
package discovery
