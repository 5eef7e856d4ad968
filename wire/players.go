package wire

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

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

// PlayerGatewayMaxAge is how long an announced gateway is listed without a
// fresh announcement: a player that stops (or crashes) disappears within
// it. Players re-announce every PlayerGatewayRefresh, so an entry survives
// two lost announcements.
const (
	PlayerGatewayMaxAge  = 3 * time.Minute
	PlayerGatewayRefresh = time.Minute
)

// PlayerInfo is one running player of an account.
type PlayerInfo struct {
	ViewerID NodeID    `json:"viewer_id"`
	Gateway  string    `json:"gateway"` // http://127.0.0.1:PORT or http://[::1]:PORT
	SeenAt   time.Time `json:"seen_at"`
}

// PlayersResponse lists an account's running players, most recent first.
type PlayersResponse struct {
	Players []PlayerInfo `json:"players"`
}

// PlayerGatewayRequest announces (or, with an empty Gateway, withdraws) the
// gateway of a player key bound to the caller's account. The player key
// signs (ViewerID, Account, Gateway, UnixMS) (SignPlayerGateway), so a
// session alone cannot point an account's video page at another address
// under a player's name.
type PlayerGatewayRequest struct {
	ViewerID  NodeID `json:"viewer_id"`
	Account   int64  `json:"account"`
	Gateway   string `json:"gateway"`
	UnixMS    int64  `json:"unix_ms"`
	Signature []byte `json:"signature"`
}

// maxGatewayURL bounds an announced gateway URL ("http://[::1]:65535" is 18).
const maxGatewayURL = 64

// CheckPlayerGateway checks an announced gateway URL is exactly
// http://127.0.0.1:PORT or http://[::1]:PORT (no path, query, user or
// fragment; a port in 1..65535 in canonical decimal). A page that follows it
// talks to the viewer's own machine only: nothing else may be announced.
func CheckPlayerGateway(gateway string) error {
	const want = "want http://127.0.0.1:PORT or http://[::1]:PORT (the player's local gateway)"
	if len(gateway) > maxGatewayURL {
		return fmt.Errorf("gateway URL of %d bytes: %s", len(gateway), want)
	}
	hostport, ok := strings.CutPrefix(gateway, "http://")
	if !ok {
		return fmt.Errorf("gateway %q: %s", gateway, want)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || (host != "127.0.0.1" && host != "::1") {
		return fmt.Errorf("gateway %q: %s", gateway, want)
	}
	if host == "::1" && !strings.HasPrefix(hostport, "[::1]:") {
		return fmt.Errorf("gateway %q: %s", gateway, want)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("gateway %q: port %q: %s", gateway, port, want)
	}
	return nil
}

// WebOrigin is the origin (RFC 6454: scheme://host[:port], lowercase, the
// default port dropped) of an http(s) URL, its path ignored, for CORS allow
// lists. A URL with user info, a query or a fragment is refused: it is not
// a site's address.
func WebOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("web origin %q: %v", raw, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("web origin %q: want the site's base URL, e.g. https://swarmcast.example or http://127.0.0.1:7000", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// playerGatewayDomain separates a player key's gateway announcement from
// every other signature the key makes.
const playerGatewayDomain = "swarmcast player gateway v1\x00"

// PlayerGatewaySigningBytes are what a player key signs to announce gateway
// for account at unixMS.
func PlayerGatewaySigningBytes(viewer NodeID, account int64, gateway string, unixMS int64) []byte {
	b := []byte(playerGatewayDomain)
	b = appendString(b, string(viewer))
	b = binary.BigEndian.AppendUint64(b, uint64(account))
	b = appendString(b, gateway)
	return binary.BigEndian.AppendUint64(b, uint64(unixMS))
}

// SignPlayerGateway is a player key's signed announcement of its gateway
// ("" withdraws it) to account.
func SignPlayerGateway(key ed25519.PrivateKey, account int64, gateway string, now time.Time) PlayerGatewayRequest {
	viewer := NodeID(hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	ms := now.UnixMilli()
	return PlayerGatewayRequest{ViewerID: viewer, Account: account, Gateway: gateway, UnixMS: ms,
		Signature: ed25519.Sign(key, PlayerGatewaySigningBytes(viewer, account, gateway, ms))}
}

// VerifyPlayerGateway checks req is a well-formed, fresh
// (NodeRequestMaxSkew) announcement signed by its player key for account.
func VerifyPlayerGateway(req *PlayerGatewayRequest, account int64, now time.Time) error {
	if err := CheckNodeID(req.ViewerID); err != nil {
		return err
	}
	if req.Gateway != "" {
		if err := CheckPlayerGateway(req.Gateway); err != nil {
			return err
		}
	}
	if len(req.Signature) == 0 {
		return fmt.Errorf("no signature: the player must sign its announcement with its own key (wire.SignPlayerGateway; swarmcast players do this)")
	}
	if req.Account != account {
		return fmt.Errorf("the player key signed for account %d, not this account (%d)", req.Account, account)
	}
	if err := (NodeRequestAuth{Node: req.ViewerID, UnixMS: req.UnixMS}).CheckFresh(now); err != nil {
		return err
	}
	pub, _ := hex.DecodeString(string(req.ViewerID))
	if !ed25519.Verify(pub, PlayerGatewaySigningBytes(req.ViewerID, req.Account, req.Gateway, req.UnixMS), req.Signature) {
		return fmt.Errorf("signature does not verify under player key %s; sign with that key", req.ViewerID)
	}
	return nil
}

// AnnouncePlayerGateway tells the coordinator where this player's gateway
// listens ("" withdraws it), signed by the player key, for the token's
// account (account: AccountInfo.ID).
func (c *CoordinatorClient) AnnouncePlayerGateway(ctx context.Context, key ed25519.PrivateKey, account int64, gateway string) error {
	return c.do(ctx, http.MethodPost, PathPlayers, SignPlayerGateway(key, account, gateway, time.Now()), nil)
}

// Players lists the token's account's running players, most recent first.
func (c *CoordinatorClient) Players(ctx context.Context) (PlayersResponse, error) {
	var resp PlayersResponse
	return resp, c.do(ctx, http.MethodGet, PathPlayers, nil, &resp)
}
