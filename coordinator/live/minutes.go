package live

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// Minutes metering (docs/LIVE.md, "BTR: workers, payment, metering").
//
// The evidence is the coordinator's own record of what players fetched: a
// player gets a live segment's sources only through a live lookup, which
// names its player key (the key its signed orders use, bound to a signed-in
// account); each segment the coordinator answered for a key is counted
// once, at its duration in the chain's signed entry. No client report is
// read. Its limit: lookups are unsigned, so a lookup naming another
// account's (public) player key counts toward that account; it can add at
// most the published segments of the chain once per key (no segment twice),
// and a player that looks ahead is counted for at most its look-ahead past
// the point it stopped.

// maxMinuteLabels bounds the channel label of live_minutes_total: the
// first 256 channels metered get their own series, later ones share
// channel="other" (channels are created by admin-allowed broadcasters, so
// this is rarely reached; the API has every channel's figure).
const maxMinuteLabels = 256

// negativeAccountTTL is how long an unbound player key is remembered as
// unbound (it may bind at any moment; until then it is not metered).
const negativeAccountTTL = 30 * time.Second

type minuteKey struct {
	chain  content.VideoID
	viewer wire.NodeID
}

type minutesState struct {
	mu       sync.Mutex // serialises a key's deltas around their store write
	rows     map[minuteKey]*coordinatordb.LiveMinutes
	accounts map[wire.NodeID]viewerAccount
	labels   map[wire.ChannelID]string
}

type viewerAccount struct {
	id    int64
	bound bool
	until time.Time // an unbound answer's expiry
}

func (m *minutesState) init() {
	if m.rows == nil {
		m.rows = map[minuteKey]*coordinatordb.LiveMinutes{}
		m.accounts = map[wire.NodeID]viewerAccount{}
		m.labels = map[wire.ChannelID]string{}
	}
}

func (s *Service) loadMinutes(ctx context.Context) error {
	rows, err := s.db.AllLiveMinutes(ctx)
	if err != nil {
		return fmt.Errorf("live: load minutes: %w", err)
	}
	s.minutes.mu.Lock()
	defer s.minutes.mu.Unlock()
	s.minutes.init()
	for i := range rows {
		r := rows[i]
		s.minutes.rows[minuteKey{r.Chain, r.Viewer}] = &r
	}
	return nil
}

// accountOf is the account viewer is bound to (false: unbound), cached.
func (s *Service) accountOf(ctx context.Context, viewer wire.NodeID, now time.Time) (int64, bool) {
	s.minutes.mu.Lock()
	s.minutes.init()
	a, ok := s.minutes.accounts[viewer]
	s.minutes.mu.Unlock()
	if ok && (a.bound || now.Before(a.until)) {
		return a.id, a.bound
	}
	acct, err := s.db.ViewerAccount(ctx, viewer)
	switch {
	case err == nil:
		a = viewerAccount{id: acct.ID, bound: true}
	case errors.Is(err, coordinatordb.ErrNotFound):
		a = viewerAccount{until: now.Add(negativeAccountTTL)}
	default:
		s.log.Warn("live minutes: player key's account", "viewer", viewer, "err", err)
		return 0, false
	}
	s.minutes.mu.Lock()
	s.minutes.accounts[viewer] = a
	s.minutes.mu.Unlock()
	return a.id, a.bound
}

// Fetched meters a live lookup's answer: the coordinator handed player key
// viewer the sources of segments [from, end) of chain. Segments already
// counted for the key are not counted again. Errors are logged: metering
// never fails a lookup.
func (s *Service) Fetched(ctx context.Context, chain content.VideoID, viewer wire.NodeID, from, end int64) {
	if viewer == "" || end <= from || from < 0 || s.db == nil || wire.CheckNodeID(viewer) != nil {
		return
	}
	now := s.cfg.Now()
	account, ok := s.accountOf(ctx, viewer, now)
	if !ok {
		return
	}
	s.minutes.mu.Lock()
	defer s.minutes.mu.Unlock()
	key := minuteKey{chain, viewer}
	row := s.minutes.rows[key]
	start := uint64(from)
	if row != nil {
		start = max(start, row.NextSegment)
	}
	if start >= uint64(end) {
		return
	}
	s.mu.Lock()
	ch := s.chains[chain]
	if ch == nil {
		s.mu.Unlock()
		return
	}
	channel := ch.rec.Channel
	var segMS int64 = defaultSegment
	if c := s.channels[channel]; c != nil && c.rec.SegmentMS > 0 {
		segMS = int64(c.rec.SegmentMS)
	}
	var watched int64
	for seq := start; seq < uint64(end); seq++ {
		if e, ok := ch.lc.Entry(seq); ok && len(e.Segments) > 0 {
			watched += int64(e.Segments[0].Duration) / 1000 // µs → ms
		} else {
			watched += segMS // an entry no longer in memory: the channel's nominal duration
		}
	}
	s.mu.Unlock()
	delta := coordinatordb.LiveMinutes{Chain: chain, Viewer: viewer, AccountID: account, WatchedMS: watched, Segments: int64(uint64(end) - start), NextSegment: uint64(end)}
	if err := s.db.AddLiveMinutes(ctx, delta, now); err != nil {
		s.log.Warn("live minutes: store", "chain", chain, "viewer", viewer, "err", err)
		return
	}
	if row == nil {
		row = &coordinatordb.LiveMinutes{Chain: chain, Viewer: viewer, AccountID: account}
		s.minutes.rows[key] = row
	}
	row.WatchedMS += delta.WatchedMS
	row.Segments += delta.Segments
	row.NextSegment = delta.NextSegment
	s.metrics.minutes.WithLabelValues(s.minuteLabelLocked(channel)).Add(float64(watched) / 60000)
}

// minuteLabelLocked is a channel's metric label (s.minutes.mu held).
func (s *Service) minuteLabelLocked(id wire.ChannelID) string {
	if l, ok := s.minutes.labels[id]; ok {
		return l
	}
	l := "other"
	if len(s.minutes.labels) < maxMinuteLabels {
		l = string(id)
	}
	s.minutes.labels[id] = l
	return l
}

// ChannelMinutes is a channel's metered watching, for its owner or an
// admin.
func (s *Service) ChannelMinutes(who coordinatordb.Account, id wire.ChannelID) (wire.LiveMinutesInfo, error) {
	s.mu.Lock()
	c := s.channels[id]
	if c == nil {
		s.mu.Unlock()
		return wire.LiveMinutesInfo{}, unknownChannel(id)
	}
	if c.rec.Owner != who.ID && who.Role != coordinatordb.RoleAdmin {
		s.mu.Unlock()
		return wire.LiveMinutesInfo{}, wire.Errorf(http.StatusForbidden, "channel %s minutes: account %q neither owns it nor is an admin", id, who.Username)
	}
	chains := map[content.VideoID]bool{}
	for cid, ch := range s.chains {
		if ch.rec.Channel == id {
			chains[cid] = true
		}
	}
	s.mu.Unlock()
	out := wire.LiveMinutesInfo{Channel: id}
	viewers := map[wire.NodeID]bool{}
	s.minutes.mu.Lock()
	for k, r := range s.minutes.rows {
		if chains[k.chain] {
			out.WatchedMS += r.WatchedMS
			out.Segments += r.Segments
			viewers[k.viewer] = true
		}
	}
	s.minutes.mu.Unlock()
	out.Viewers = len(viewers)
	out.Minutes = float64(out.WatchedMS) / 60000
	return out, nil
}

// AccountMinutes is an account's own metered watching, per chain.
func (s *Service) AccountMinutes(account int64) wire.AccountMinutesInfo {
	by := map[content.VideoID]int64{}
	s.minutes.mu.Lock()
	for k, r := range s.minutes.rows {
		if r.AccountID == account {
			by[k.chain] += r.WatchedMS
		}
	}
	s.minutes.mu.Unlock()
	out := wire.AccountMinutesInfo{Chains: []wire.ChainMinutes{}}
	s.mu.Lock()
	for chain, ms := range by {
		cm := wire.ChainMinutes{Chain: chain, WatchedMS: ms, Minutes: float64(ms) / 60000}
		if ch := s.chains[chain]; ch != nil {
			cm.Channel = ch.rec.Channel
		}
		out.Chains = append(out.Chains, cm)
		out.WatchedMS += ms
	}
	s.mu.Unlock()
	slices.SortFunc(out.Chains, func(a, b wire.ChainMinutes) int { return cmp.Compare(a.Chain.String(), b.Chain.String()) })
	out.Minutes = float64(out.WatchedMS) / 60000
	return out
}

func (s *Service) handleChannelMinutes(w http.ResponseWriter, r *http.Request) {
	who, err := s.acct.Caller(r)
	if err != nil {
		s.acct.WriteError(w, err)
		return
	}
	out, err := s.ChannelMinutes(who, channelParam(r))
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

func (s *Service) handleAccountMinutes(w http.ResponseWriter, r *http.Request) {
	who, err := s.acct.Caller(r)
	if err != nil {
		s.acct.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, s.AccountMinutes(who.ID))
}
