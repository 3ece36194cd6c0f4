package storage

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peernode/protocols/storage/pb"
	"peernode/protocols/storage/store"
)

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestDecodeRequest(t *testing.T) {
	id := store.Sum([]byte("blob")).Bytes()
	sha := []byte{0x01, 0x55, 0x12, 0x20} // CIDv1 raw sha2-256 header
	sha = append(sha, make([]byte, 32)...)
	for _, tc := range []struct {
		name string
		req  *pb.Request
		want op
		bad  bool
	}{
		{"put", &pb.Request{Body: &pb.Request_Put{Put: &pb.Put{Id: id, Size: 10}}}, opPut, false},
		{"get whole", &pb.Request{Body: &pb.Request_Get{Get: &pb.Get{Id: id, Whole: true}}}, opGet, false},
		{"get range", &pb.Request{Body: &pb.Request_Get{Get: &pb.Get{Id: id, Offset: 5, Length: 7}}}, opGet, false},
		{"has", &pb.Request{Body: &pb.Request_Has{Has: &pb.Has{Ids: [][]byte{id, id}}}}, opHas, false},
		{"stat", &pb.Request{Body: &pb.Request_Stat{Stat: &pb.Stat{Id: id}}}, opStat, false},
		{"empty", &pb.Request{}, 0, true},
		{"put size overflow", &pb.Request{Body: &pb.Request_Put{Put: &pb.Put{Id: id, Size: math.MaxUint64}}}, 0, true},
		{"range overflow", &pb.Request{Body: &pb.Request_Get{Get: &pb.Get{Id: id, Offset: math.MaxInt64, Length: 2}}}, 0, true},
		{"sha2 id", &pb.Request{Body: &pb.Request_Stat{Stat: &pb.Stat{Id: sha}}}, 0, true},
		{"garbage id", &pb.Request{Body: &pb.Request_Stat{Stat: &pb.Stat{Id: []byte{1, 2, 3}}}}, 0, true},
		{"too many ids", &pb.Request{Body: &pb.Request_Has{Has: &pb.Has{Ids: make([][]byte, MaxHasIDs+1)}}}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest(marshal(t, tc.req))
			if tc.bad {
				require.ErrorIs(t, err, ErrMalformed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r.op)
		})
	}
	_, err := DecodeRequest([]byte{0xff, 0xff})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestDecodeResponse(t *testing.T) {
	r, err := DecodeResponse(marshal(t, &pb.Response{Size: 10, Offset: 2, Length: 8}))
	require.NoError(t, err)
	require.EqualValues(t, 10, r.size)
	for _, m := range []*pb.Response{
		{Size: 10, Offset: 2, Length: 9},
		{Code: 99},
		{Size: math.MaxUint64},
	} {
		_, err := DecodeResponse(marshal(t, m))
		require.ErrorIs(t, err, ErrMalformed)
	}
	long := string(bytes.Repeat([]byte("é"), 300))
	r, err = DecodeResponse(marshal(t, &pb.Response{Code: pb.Code_BUSY, Message: long}))
	require.NoError(t, err)
	require.LessOrEqual(t, len(r.message), MaxMessageLen)
}

func TestReadMsgLimits(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeMsg(&buf, &pb.Response{Size: 3}))
	buf.WriteString("data after")
	br := bufio.NewReader(&buf)
	b, err := readMsg(br)
	require.NoError(t, err)
	_, err = DecodeResponse(b)
	require.NoError(t, err)
	rest, _ := br.ReadString(0)
	require.Equal(t, "data after", rest, "readMsg read past its message")

	_, err = readMsg(bufio.NewReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0x0f})))
	require.ErrorIs(t, err, ErrTooLargeHeader)
	_, err = readMsg(bufio.NewReader(bytes.NewReader([]byte{0x05, 1, 2})))
	require.Error(t, err)
	_, err = readMsg(bufio.NewReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})))
	require.ErrorIs(t, err, ErrMalformed)
}

func FuzzDecodeRequest(f *testing.F) {
	id := store.Sum([]byte("blob")).Bytes()
	for _, m := range []*pb.Request{
		{Body: &pb.Request_Put{Put: &pb.Put{Id: id, Size: 10}}},
		{Body: &pb.Request_Get{Get: &pb.Get{Id: id, Offset: 1, Length: 2}}},
		{Body: &pb.Request_Has{Has: &pb.Has{Ids: [][]byte{id}}}},
		{Body: &pb.Request_Stat{Stat: &pb.Stat{Id: id}}},
	} {
		f.Add(marshal(f, m))
	}
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.size < 0 || r.off < 0 || r.length < 0 || r.off+r.length < 0 || len(r.ids) > MaxHasIDs {
			t.Fatalf("accepted out-of-range request %+v", r)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(marshal(f, &pb.Response{Size: 10, Offset: 2, Length: 8}))
	f.Add(marshal(f, &pb.Response{Code: pb.Code_QUOTA, Message: "full"}))
	f.Add(marshal(f, &pb.Response{Have: []bool{true, false}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.off < 0 || r.length < 0 || r.off+r.length > r.size || len(r.message) > MaxMessageLen {
			t.Fatalf("accepted out-of-range response %+v", r)
		}
	})
}
