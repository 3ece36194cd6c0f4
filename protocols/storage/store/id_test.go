package store

import (
	"encoding/hex"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func TestSumKnownDigests(t *testing.T) {
	for _, tc := range []struct{ data, digest string }{
		{"", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"foo", "04e0bb39f30b1a3feb89f536c93be15055482df748674b00d26e5a75777702e9"},
	} {
		id := Sum([]byte(tc.data))
		root, err := Root(id)
		require.NoError(t, err)
		require.Equal(t, tc.digest, hex.EncodeToString(root[:]), "BLAKE3(%q)", tc.data)
		dec, err := multihash.Decode(id.Hash())
		require.NoError(t, err)
		require.EqualValues(t, multihash.BLAKE3, dec.Code)
		require.EqualValues(t, cid.Raw, id.Type())
		require.Equal(t, id, IDFromRoot(root))
	}
}

func TestParseIDRoundTrip(t *testing.T) {
	for i := range 20 {
		id := Sum(randomBytes(i, uint64(i)))
		s := id.String()
		require.Equal(t, "bafkr4i", s[:7], "base32 CIDv1 raw blake3 prefix")
		got, err := ParseID(s)
		require.NoError(t, err)
		require.True(t, got.Equals(id))
		require.NoError(t, CheckID(id))
		c, err := cid.Cast(id.Bytes())
		require.NoError(t, err)
		require.NoError(t, CheckID(c))
	}
	// Other multibases name the same blob.
	id := Sum([]byte("x"))
	s, err := id.StringOfBase('z')
	require.NoError(t, err)
	got, err := ParseID(s)
	require.NoError(t, err)
	require.True(t, got.Equals(id))
}

func TestParseIDRejects(t *testing.T) {
	data := []byte("blob")
	sha, err := multihash.Sum(data, multihash.SHA2_256, -1)
	require.NoError(t, err)
	b3, err := multihash.Sum(data, multihash.BLAKE3, 32)
	require.NoError(t, err)
	b3long, err := multihash.Sum(data, multihash.BLAKE3, 64)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, s string
	}{
		{"CIDv0", cid.NewCidV0(sha).String()},
		{"dag-pb codec", cid.NewCidV1(cid.DagProtobuf, b3).String()},
		{"sha2-256", cid.NewCidV1(cid.Raw, sha).String()},
		{"64-byte digest", cid.NewCidV1(cid.Raw, b3long).String()},
		{"garbage", "not a cid"},
		{"empty", ""},
		{"truncated", Sum(data).String()[:20]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseID(tc.s)
			require.ErrorIs(t, err, ErrBadID)
			if c, derr := cid.Decode(tc.s); derr == nil {
				require.ErrorIs(t, CheckID(c), ErrBadID)
				_, err := Root(c)
				require.ErrorIs(t, err, ErrBadID)
			}
		})
	}
	require.ErrorIs(t, CheckID(cid.Undef), ErrBadID)
}

// Shards use digest characters only and spread over many directories.
func TestShardsSpread(t *testing.T) {
	shards := map[string]int{}
	for i := range 2000 {
		shards[shardOf(Sum(randomBytes(8, uint64(i))).String())]++
	}
	require.Greater(t, len(shards), 800, "2000 random IDs over 1024 shards")
}
