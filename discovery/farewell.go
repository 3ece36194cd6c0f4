package discovery

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
)

// LeaveProtocol carries a leaving announcement straight to each member a
// node is connected to when it shuts down, besides the announcement topic:
// GossipSub offers no flush and may drop a message under load (a full
// validation queue, a queue still unwritten when the host closes), and a
// member that misses the leaving announcement keeps the node until it goes
// stale. The leaving node opens a stream, writes one uvarint-length-
// prefixed SignedAnnouncement with leaving set, and closes its side; the
// member checks it like an announcement of the topic, published by the
// stream's remote node, takes it into its table and answers one byte
// (FarewellAck) before closing. Registered behind the verified-only gate.
const LeaveProtocol protocol.ID = "/peernode/leave/1.0.0"

// FarewellAck is the member's answer once the leaving is in its table.
const FarewellAck byte = 1

// ErrMalformedFarewell is wrapped by every error of a farewell frame that
// cannot be read.
var ErrMalformedFarewell = errors.New("malformed farewell")

// ReadFarewell reads one farewell frame: a uvarint length of 1 to
// MaxAnnouncementSize and that many bytes, the signed announcement. It
// reads nothing past the frame.
func ReadFarewell(r io.Reader) ([]byte, error) {
	mr := msgio.NewVarintReaderSize(r, MaxAnnouncementSize)
	b, err := mr.ReadMsg()
	switch {
	case errors.Is(err, msgio.ErrMsgTooLarge):
		return nil, fmt.Errorf("%w: over %d bytes", ErrMalformedFarewell, MaxAnnouncementSize)
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: %w", ErrMalformedFarewell, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformedFarewell, err)
	}
	defer mr.ReleaseMsg(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedFarewell)
	}
	return bytes.Clone(b), nil
}

// ServeFarewell answers one farewell stream: it reads the frame, checks it
// with Validate (published by the stream's remote node) and that it is a
// leaving one, hands it to accept, and acknowledges. A frame that does not
// pass is reported to rejected (when it is a Reject) and the stream reset.
func ServeFarewell(s network.Stream, lastSeq func(peer.ID) (uint64, bool), accept func(Announcement, []byte), rejected func(peer.ID, string)) {
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(FarewellTimeout))
	b, err := ReadFarewell(s)
	if err == nil {
		var a Announcement
		a, err = Validate(b, from, time.Now(), lastSeq)
		switch {
		case err == nil && !a.Leaving:
			err = invalid(Reject, "not_leaving", "a farewell must announce leaving")
		case err == nil:
			accept(a, b)
		}
	}
	var inv *InvalidError
	switch {
	case err == nil:
		_, _ = s.Write([]byte{FarewellAck})
		_ = s.Close()
		return
	case errors.As(err, &inv) && inv.Verdict == Ignore:
		// Old or stale: nothing to take in, but nothing wrong either.
		_, _ = s.Write([]byte{FarewellAck})
		_ = s.Close()
		return
	case errors.As(err, &inv) || errors.Is(err, ErrMalformedFarewell):
		if rejected != nil {
			rejected(from, err.Error())
		}
	}
	log.Debugw("farewell refused", "peer", from, "err", err)
	_ = s.Reset()
}

// FarewellTimeout bounds one farewell, both sides.
const FarewellTimeout = time.Second

// farewellConcurrency bounds the farewells in flight: a node with
// thousands of connections does not open thousands of streams at once.
const farewellConcurrency = 64

// SendFarewells sends signed (a leaving announcement) to every peer at
// once over LeaveProtocol, through open, and waits for their
// acknowledgements until ctx ends. It returns how many acknowledged.
func SendFarewells(ctx context.Context, peers []peer.ID, signed []byte, open func(context.Context, peer.ID) (network.Stream, error)) int {
	frame := binary.AppendUvarint(make([]byte, 0, len(signed)+binary.MaxVarintLen64), uint64(len(signed)))
	frame = append(frame, signed...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	slots := make(chan struct{}, farewellConcurrency)
	for _, p := range peers {
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return
			}
			if err := sendFarewell(ctx, p, frame, open); err != nil {
				log.Debugw("farewell not acknowledged", "peer", p, "err", err)
				return
			}
			mu.Lock()
			acked++
			mu.Unlock()
		})
	}
	wg.Wait()
	return acked
}

func sendFarewell(ctx context.Context, p peer.ID, frame []byte, open func(context.Context, peer.ID) (network.Stream, error)) error {
	s, err := open(ctx, p)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if _, err := s.Write(frame); err != nil {
		s.Reset()
		return err
	}
	_ = s.CloseWrite()
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		s.Reset()
		return err
	}
	_ = s.Close()
	if ack[0] != FarewellAck {
		return fmt.Errorf("unexpected answer %d", ack[0])
	}
	return nil
}
