package wire

import "github.com/swarmcast/swarmcast/content"

// Live minutes (docs/LIVE.md, "BTR: workers, payment, metering"): the
// media minutes of the live segments the coordinator handed each signed-in
// player sources for (its live lookups carry the player key the account
// bound), each segment counted once per player key. Durable.
const (
	// GET → LiveMinutesInfo (the channel's owner or an admin).
	PathLiveChannelMinutes = "/api/v1/live/channels/{channel}/minutes"
	// GET → AccountMinutesInfo (the caller's own account).
	PathAccountMinutes = "/api/v1/accounts/minutes"
)

// LiveMinutesInfo is a channel's metered watching over all its broadcasts.
type LiveMinutesInfo struct {
	Channel   ChannelID `json:"channel"`
	Minutes   float64   `json:"minutes"`
	WatchedMS int64     `json:"watched_ms"`
	Segments  int64     `json:"segments"`
	Viewers   int       `json:"viewers"` // distinct player keys
}

// AccountMinutesInfo is an account's metered watching, per chain.
type AccountMinutesInfo struct {
	Minutes   float64        `json:"minutes"`
	WatchedMS int64          `json:"watched_ms"`
	Chains    []ChainMinutes `json:"chains"`
}

// ChainMinutes is one chain's share of an account's minutes.
type ChainMinutes struct {
	Chain     content.VideoID `json:"chain"`
	Channel   ChannelID       `json:"channel"`
	WatchedMS int64           `json:"watched_ms"`
	Minutes   float64         `json:"minutes"`
}
