// Package storage holds content-addressed blobs on a node and serves them
// to Verified peers over /peernode/storage/1.0.0.
//
// A blob's ID is a CIDv1 with the raw codec over a BLAKE3-256 multihash.
// Beside each blob the store keeps its bao outboard (the BLAKE3 tree's
// inner hashes), so a receiver verifies data as it streams, one chunk group
// at a time, and a byte range is verified the same way.
package storage
