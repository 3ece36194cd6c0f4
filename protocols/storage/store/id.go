package store

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"lukechampine.com/blake3"
)

// idLen is the binary length of a blob ID: version, codec, multihash code
// and digest length (one byte each), then the 32-byte digest.
const idLen = 4 + 32

// IDFromRoot is the blob ID of the content whose BLAKE3 hash (the bao tree
// root) is root.
func IDFromRoot(root [32]byte) cid.Cid {
	mh, err := multihash.Encode(root[:], multihash.BLAKE3)
	if err != nil {
		// Encode fails only for an unknown code.
		panic(fmt.Sprintf("store: encoding a BLAKE3 multihash: %v", err))
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// Sum is the blob ID of data.
func Sum(data []byte) cid.Cid {
	return IDFromRoot(blake3.Sum256(data))
}

// emptyRoot is the BLAKE3 hash of no bytes, the only valid root of an
// empty blob.
var emptyRoot = blake3.Sum256(nil)

// ParseID parses a blob ID in any multibase (the store prints base32).
// Errors wrap ErrBadID.
func ParseID(s string) (cid.Cid, error) {
	id, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q: %w", ErrBadID, clip(s), err)
	}
	if err := CheckID(id); err != nil {
		return cid.Undef, err
	}
	return id, nil
}

// CheckID reports, wrapping ErrBadID, why id is not a blob ID: a CIDv1 with
// the raw codec and a 32-byte BLAKE3 multihash. Use it on CIDs from peers.
func CheckID(id cid.Cid) error {
	if !id.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrBadID)
	}
	p := id.Prefix()
	var why string
	switch {
	case p.Version != 1:
		why = fmt.Sprintf("CIDv%d, want CIDv1", p.Version)
	case p.Codec != cid.Raw:
		why = fmt.Sprintf("codec 0x%x, want raw (0x55)", p.Codec)
	case p.MhType != multihash.BLAKE3:
		why = fmt.Sprintf("multihash 0x%x (%s), want blake3 (0x1e)", p.MhType, multihash.Codes[p.MhType])
	case p.MhLength != 32:
		why = fmt.Sprintf("%d-byte digest, want 32", p.MhLength)
	case id.ByteLen() != idLen:
		why = fmt.Sprintf("%d bytes long, want %d", id.ByteLen(), idLen)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrBadID, clip(id.String()), why)
}

// Root is the BLAKE3 hash of the content id names: the root of its bao tree.
func Root(id cid.Cid) ([32]byte, error) {
	var root [32]byte
	if err := CheckID(id); err != nil {
		return root, err
	}
	copy(root[:], id.Bytes()[idLen-32:])
	return root, nil
}

// clip shortens peer-supplied text for an error message.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
