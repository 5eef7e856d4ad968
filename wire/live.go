package wire

import (
	"strconv"

	"github.com/swarmcast/swarmcast/content"
)

// Live channels (docs/LIVE.md). A channel is the coordinator's long-lived
// name with a stream key; each broadcast on it is a chain (content.LiveGenesis
// + signed entries) whose id is a content.VideoID, so live shards use the
// VoD shard routes, lookups, orders and receipts with the chain id as video.
//
// {channel} is a channel id (ChannelID), {chain} a hex chain id.
const (
	// POST CreateChannelRequest → ChannelCreated (an admin, or an account
	// the admin allowed to broadcast); GET → []ChannelInfo (anyone).
	PathLiveChannels = "/api/v1/live/channels"
	// GET → ChannelInfo.
	PathLiveChannel = "/api/v1/live/channels/{channel}"
	// POST → ChannelInfo: the owner (or an admin) ends the broadcast; the
	// origin seals the chain into a recording.
	PathLiveEnd = "/api/v1/live/channels/{channel}/end"
	// PathLiveRotateKey gives a channel a new stream key (its owner or an
	// admin): the answer shows it once, and the old key is refused from
	// then on, so a publisher still using it is cut off at its origin's
	// next re-check (live.Config.Reauth).
	PathLiveRotateKey = "/api/v1/live/channels/{channel}/rotate-key" // POST {} → ChannelCreated
	// POST IngestAuthRequest → IngestAuthResponse (origins only, signed):
	// the origin asks whether a stream key may publish, before it accepts
	// one byte of media.
	PathLiveIngestAuth = "/api/v1/live/ingest/authorize"
	// POST ChannelStateReport → {} (origins only, signed): publishing,
	// waiting (publisher dropped, may resume), error (with the reason the
	// publisher was also given), ended (with the recording's video id).
	PathLiveState = "/api/v1/live/channels/{channel}/state"
	// POST LiveStartRequest → {} (origins only, signed): a new chain
	// (signed genesis + content key) for a channel.
	PathLiveChains = "/api/v1/live/chains"
	// GET → the signed genesis bytes (application/octet-stream).
	PathLiveGenesis = "/api/v1/live/chains/{chain}/genesis"
	// POST the signed entry bytes → {} (origins only, signed; appended
	// only if it chains). GET ?from=SEQ[&wait_ms=N] → LiveEntries framing
	// (ContentTypeLiveEntries) of the held entries from SEQ on; waits up to
	// wait_ms (≤ 10 s) for the first one when none is held yet.
	PathLiveEntries = "/api/v1/live/chains/{chain}/entries"
	// GET → the 16-byte AES-128 key of the chain (same rules as PathKey).
	PathLiveKey = "/api/v1/live/chains/{chain}/key"
	// POST AllowBroadcasterRequest → {} (admins): the account may create
	// channels from now on.
	PathLiveBroadcasters = "/api/v1/admin/live/broadcasters"
)

// AllowBroadcasterRequest names the account an admin allows to broadcast.
type AllowBroadcasterRequest struct {
	Username string `json:"username"`
}

// LiveIngestHLSURL is the HLS-push ingest URL of streamKey on the origin
// whose shard server is at base (ffmpeg -f hls -method PUT).
func LiveIngestHLSURL(base, streamKey string) string {
	return base + expandPath(PathLiveIngestHLS, streamKey, "index.m3u8")
}

// LiveIngestRTMPURL is the RTMP ingest URL of streamKey on the origin whose
// RTMP listener is rtmpAddr (rtmp://HOST:PORT).
func LiveIngestRTMPURL(rtmpAddr, streamKey string) string {
	return rtmpAddr + "/live/" + streamKey
}

// Relay and edge route: a parent in a channel's overlay pushes a segment's
// shards to a child. POST LivePush framing (ContentTypeLivePush), signed
// by the sending node (NodeSigner headers); the child accepts it only from
// a parent the coordinator assigned it and verifies every shard against
// the entry before keeping or forwarding it.
const PathLivePush = "/v1/live/push"

// MaxLivePushBytes bounds one push body (fanout.MaxPushBytes): a child's
// substreams' shards of one segment of every rendition. Servers let
// PathLivePush bodies grow to it (the hot listener's other bodies stay
// at 1 MiB).
const MaxLivePushBytes = 32 << 20

// Origin ingest route for HLS push: ffmpeg -f hls -method PUT
// http://ORIGIN/live/KEY/index.m3u8 PUTs the playlist and each segment
// under the stream key (the key is the credential, as in RTMP). RTMP
// ingest is rtmp://ORIGIN:PORT/live/KEY on the origin's --rtmp listener.
const PathLiveIngestHLS = "/live/{key}/{file}"

// Content types of the live binary bodies.
const (
	ContentTypeLiveEntries = "application/x-swarmcast-live-entries"
	ContentTypeLivePush    = "application/x-swarmcast-live-push"
)

// RoleRelay is a live fan-out node (swarmcast relay).
const RoleRelay Role = "relay"

// ChannelID names a channel: "ch_" and 16 lowercase hex digits, assigned
// by the coordinator.
type ChannelID string

// Channel states, as ChannelInfo.State.
const (
	ChannelIdle       = "idle"       // created, never published or ended
	ChannelPublishing = "publishing" // a publisher is connected and segments flow
	ChannelWaiting    = "waiting"    // the publisher dropped; the chain resumes if it returns
	ChannelError      = "error"      // the last publish attempt was refused (Error says why)
	ChannelEnded      = "ended"      // sealed; Recording plays as a video
)

// CreateChannelRequest creates a channel. Zero fields take the defaults:
// 1000 ms segments, the origin's default ladder, free to watch.
type CreateChannelRequest struct {
	Name      string `json:"name"`
	SegmentMS int    `json:"segment_ms,omitempty"`
	// PartMS makes a Low-Latency HLS channel (docs/LIVE.md): each segment
	// is also published as signed parts of about PartMS (100..SegmentMS/2).
	// 0: a standard channel.
	PartMS int `json:"part_ms,omitempty"`
}

// ChannelCreated is the answer to a create: the stream key is shown once
// (the coordinator keeps only its hash).
type ChannelCreated struct {
	Channel   ChannelInfo `json:"channel"`
	StreamKey string      `json:"stream_key"`
	// RTMPIngest and HLSIngest are the ingest URLs of the alive origins
	// (each with the key in it): push to any one.
	RTMPIngest []string `json:"rtmp_ingest,omitempty"`
	HLSIngest  []string `json:"hls_ingest,omitempty"`
}

// ChannelInfo is a channel as anyone may see it.
type ChannelInfo struct {
	ID        ChannelID `json:"id"`
	Name      string    `json:"name"`
	Owner     int64     `json:"owner"`
	State     string    `json:"state"`
	Error     string    `json:"error,omitempty"`
	SegmentMS int       `json:"segment_ms"`
	// PartMS is a low-latency channel's part target (0: standard HLS).
	PartMS int `json:"part_ms,omitempty"`
	// Chain is the current (or last) broadcast's chain id; zero before the
	// first publish.
	Chain content.VideoID `json:"chain,omitzero"`
	// Head is the newest entry's Seq (-1 before the first).
	Head int64 `json:"head"`
	// Recordings are the sealed broadcasts, newest first.
	Recordings []content.VideoID `json:"recordings,omitempty"`
	// Viewers counts the edges whose players watch the current chain
	// (HeartbeatRequest.LiveWatching), as of their last heartbeats.
	Viewers int `json:"viewers"`
}

// IngestAuthRequest asks whether StreamKey may publish.
type IngestAuthRequest struct {
	StreamKey string `json:"stream_key"`
}

// IngestAuthResponse describes the channel a key publishes to. Chain, if
// non-zero, is a broadcast that is waiting for its publisher: the origin
// resumes it (same chain, next Seq, Discontinuity) rather than start one.
type IngestAuthResponse struct {
	Channel    ChannelInfo     `json:"channel"`
	Resume     content.VideoID `json:"resume,omitzero"`
	K          int             `json:"k"`
	NMax       int             `json:"n_max"`
	PushShards int             `json:"push_shards"`
}

// ChannelStateReport is an origin's report of a channel's state.
type ChannelStateReport struct {
	State     string          `json:"state"`
	Error     string          `json:"error,omitempty"`
	Chain     content.VideoID `json:"chain,omitzero"`
	Recording content.VideoID `json:"recording,omitzero"`
}

// LiveStartRequest registers a chain: the signed genesis and its content
// key (16 bytes), like a publish of a video.
type LiveStartRequest struct {
	Genesis []byte `json:"genesis"`
	Key     []byte `json:"key"`
}

// LiveRoute is one node's place in one substream tree of one chain, handed
// out in heartbeat answers. The origin gets every substream with no
// Parent; a relay or edge forwards what arrives from Parent to Children.
type LiveRoute struct {
	Chain     content.VideoID `json:"chain"`
	Substream int             `json:"substream"`
	// Indices are the shard indices the substream carries
	// (content.SubstreamIndices).
	Indices []int  `json:"indices"`
	Parent  NodeID `json:"parent,omitempty"`
	// ParentAddr is Parent's base URL, so a relay measures its round
	// trip to the parent too (PeerRTTMS); empty: only children are measured.
	ParentAddr string `json:"parent_addr,omitempty"`
	// BackupParent is the precomputed standby parent of this substream
	// (docs/LIVE.md, "Relays under BTR"): a node of the same substream
	// tree outside Parent's subtree, which takes over from the switch
	// segment the channel's BTR log names when Parent is excluded. Empty
	// when Parent is the origin (the root is never excluded).
	BackupParent     NodeID `json:"backup_parent,omitempty"`
	BackupParentAddr string `json:"backup_parent_addr,omitempty"`
	// SwitchAt, when nonzero, is the segment from which BackupParent
	// replaces Parent: Parent is excluded, and SwitchAt is the switch
	// segment of its exclusion in the channel's BTR log (Current + Δ).
	// Pushes of earlier segments are taken from Parent, later ones only
	// from BackupParent: every child switches at the same segment.
	SwitchAt uint64   `json:"switch_at,omitempty"`
	Children []Source `json:"children,omitempty"`
	// Standby are the children this node is the backup parent of in this
	// substream: it pushes to one from the switch segment on once the
	// child's parent (For) is excluded.
	Standby []LiveStandby `json:"standby,omitempty"`
}

// HeaderPushStatements carries, on a live push (PathLivePush), the
// parent's signed statements of what it pushed: one encoded btr.Output per
// substream of the push (the relaying task and the digest of its shards),
// base64url without padding, comma-separated. A child that refuses the
// push's shards keeps the statement as the parent's proof of commission
// (docs/LIVE.md, "Relays under BTR"). The origin sends none (the root).
const HeaderPushStatements = "X-Swarmcast-Push-Statements"

// MaxPushStatements bounds the statements one push header may carry.
const MaxPushStatements = 16

// LiveStandby is a standby child: Child, whose parent in the substream is
// For, switches to the route's node when For is excluded.
type LiveStandby struct {
	Child Source `json:"child"`
	For   NodeID `json:"for"`
	// From, when nonzero, is the switch segment of For's exclusion: the
	// node pushes this substream to Child from segment From on.
	From uint64 `json:"from,omitempty"`
}

// LiveEntriesURL is the entries of chain on the coordinator at base, from
// seq on, waiting up to waitMS for the first.
func LiveEntriesURL(base string, chain content.VideoID, from uint64, waitMS int) string {
	u := base + expandPath(PathLiveEntries, chain.String()) + "?from=" + strconv.FormatUint(from, 10)
	if waitMS > 0 {
		u += "&wait_ms=" + strconv.Itoa(waitMS)
	}
	return u
}
