// Package store is a node's local content-addressed blob store.
//
// A blob's ID is a CIDv1 with the raw codec and a 32-byte BLAKE3 multihash
// of its bytes (ParseID, CheckID, Sum). Blobs are kept with their bao
// outboard (the BLAKE3 tree's inner nodes, chunk groups of GroupSize
// bytes), so that any byte range can be served as a slice encoding that the
// receiver verifies group by group against the ID alone (WriteEncoded,
// DecodeVerified), and a blob arriving from a peer is verified as it comes,
// a liar being caught within the first group that differs (Receive).
//
// Layout under the store's directory (files 0600, directories 0700):
//
//	blobs/<shard>/<id>       the data; <shard> is 2 characters of <id>
//	blobs/<shard>/<id>.obao  its outboard
//	tmp/                     writes in progress, removed at Open
//
// Writes go to tmp/, are synced, and are renamed into place outboard first,
// so a visible blob is complete and always has its outboard; the shard
// directory is synced after. Memory stays bounded whatever the blob size:
// a write holds one 256 KiB buffer and a 64 KiB window of its outboard, a
// read a few such buffers. Writes count
// against a byte quota and keep a share of the disk free (Options).
package store
