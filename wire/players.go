package wire

// Web playback: a running player tells the coordinator where its local
// gateway listens, so the coordinator's video page can play through it
// (PathPlayers); otherwise the page plays the coordinator's HTTP fallback
// (PathWatchMaster).
const (
	// PathPlayers: GET → PlayersResponse (the caller's running players,
	// most recent first); POST PlayerGatewayRequest → {} (a player
	// announces or withdraws its gateway). A login session either way.
	PathPlayers = "/api/v1/accounts/players"
)
