package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/swarmcast/swarmcast/content"
)

// Live-channel calls on the coordinator (routes in live.go). Calls marked
// "origin" must come from a client made with AsNode by an allowed origin.

// CreateChannel creates a channel (an admin's or allowed account's session).
func (c *CoordinatorClient) CreateChannel(ctx context.Context, req CreateChannelRequest) (ChannelCreated, error) {
	var out ChannelCreated
	return out, c.do(ctx, http.MethodPost, PathLiveChannels, req, &out)
}

// Channels lists every channel.
func (c *CoordinatorClient) Channels(ctx context.Context) ([]ChannelInfo, error) {
	var out []ChannelInfo
	return out, c.do(ctx, http.MethodGet, PathLiveChannels, nil, &out)
}

// Channel describes one channel.
func (c *CoordinatorClient) Channel(ctx context.Context, id ChannelID) (ChannelInfo, error) {
	var out ChannelInfo
	return out, c.do(ctx, http.MethodGet, expandPath(PathLiveChannel, string(id)), nil, &out)
}

// EndChannel ends a channel's broadcast (its owner or an admin).
func (c *CoordinatorClient) EndChannel(ctx context.Context, id ChannelID) (ChannelInfo, error) {
	var out ChannelInfo
	return out, c.do(ctx, http.MethodPost, expandPath(PathLiveEnd, string(id)), struct{}{}, &out)
}

// RotateStreamKey gives a channel a new stream key (its owner's or an
// admin's session); the answer holds it and the ingest URLs, once.
func (c *CoordinatorClient) RotateStreamKey(ctx context.Context, id ChannelID) (ChannelCreated, error) {
	var out ChannelCreated
	return out, c.do(ctx, http.MethodPost, expandPath(PathLiveRotateKey, string(id)), struct{}{}, &out)
}

// AllowBroadcaster lets an account create channels (an admin's session).
func (c *CoordinatorClient) AllowBroadcaster(ctx context.Context, username string) error {
	return c.do(ctx, http.MethodPost, PathLiveBroadcasters, AllowBroadcasterRequest{Username: username}, nil)
}

// AuthorizeIngest asks whether a stream key may publish (origin).
func (c *CoordinatorClient) AuthorizeIngest(ctx context.Context, key string) (IngestAuthResponse, error) {
	var out IngestAuthResponse
	return out, c.doNode(ctx, PathLiveIngestAuth, IngestAuthRequest{StreamKey: key}, &out)
}

// ReportChannelState reports a channel's state (origin).
func (c *CoordinatorClient) ReportChannelState(ctx context.Context, id ChannelID, rep ChannelStateReport) error {
	return c.doNode(ctx, expandPath(PathLiveState, string(id)), rep, nil)
}

// StartChain registers a new chain with its content key (origin).
func (c *CoordinatorClient) StartChain(ctx context.Context, genesis []byte, key content.ContentKey) error {
	return c.doNode(ctx, PathLiveChains, LiveStartRequest{Genesis: genesis, Key: key[:]}, nil)
}

// AppendEntry publishes one signed entry of chain (origin). An error
// wrapping ErrChannelEnded means the channel's owner ended the broadcast:
// stop publishing and seal.
func (c *CoordinatorClient) AppendEntry(ctx context.Context, chain content.VideoID, entry []byte) error {
	resp, err := c.sendBytes(ctx, http.MethodPost, expandPath(PathLiveEntries, chain.String()), nil, true, "application/octet-stream", entry)
	if err != nil {
		var se *APIError
		if errors.As(err, &se) && se.Status == http.StatusGone {
			return fmt.Errorf("%w: %v", ErrChannelEnded, err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// ErrChannelEnded is AppendEntry's answer once the channel was ended.
var ErrChannelEnded = errors.New("the channel's broadcast was ended")

// LiveGenesis fetches a chain's signed genesis; the caller decodes it
// (content.DecodeLiveGenesis) and checks that its ID is chain.
func (c *CoordinatorClient) LiveGenesis(ctx context.Context, chain content.VideoID) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, http.MethodGet, expandPath(PathLiveGenesis, chain.String()), nil, &b)
}

// LiveEntries fetches the signed entries of chain from seq on, waiting up
// to waitMS for the first; the caller verifies each (LiveChain.Append).
func (c *CoordinatorClient) LiveEntries(ctx context.Context, chain content.VideoID, from uint64, waitMS int) ([][]byte, error) {
	u := LiveEntriesURL("", chain, from, waitMS)
	var b []byte
	if err := c.do(ctx, http.MethodGet, u, nil, &b); err != nil {
		return nil, err
	}
	return DecodeLiveEntries(b)
}

// LiveKey fetches a chain's content key.
func (c *CoordinatorClient) LiveKey(ctx context.Context, chain content.VideoID) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, http.MethodGet, expandPath(PathLiveKey, chain.String()), nil, &b)
}

// MaxLiveEntriesPerAnswer bounds one entries answer (a joining node asks
// again from the last Seq it got).
const MaxLiveEntriesPerAnswer = 600

// EncodeLiveEntries frames signed entries: each as a u16 length and its
// bytes (an entry is at most a few hundred bytes).
func EncodeLiveEntries(entries [][]byte) []byte {
	var out []byte
	for _, e := range entries {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out
}

// DecodeLiveEntries splits EncodeLiveEntries framing from untrusted bytes
// (each entry still needs verifying).
func DecodeLiveEntries(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("live entries: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n == 0 || n > len(b) {
			return nil, fmt.Errorf("live entries: entry of %d bytes, %d remain", n, len(b))
		}
		if len(out) == MaxLiveEntriesPerAnswer {
			return nil, fmt.Errorf("live entries: more than %d in one answer", MaxLiveEntriesPerAnswer)
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}
