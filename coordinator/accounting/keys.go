package accounting

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// AuthorizeKey is the content-key route's rule: the request must come from
// an authenticated account entitled to the video. A free video is unlocked on the spot (an
// unlock at price 0 is the entitlement), so players need no extra step.
func (s *Service) AuthorizeKey(r *http.Request, id content.VideoID) error {
	err := s.authorizeKey(r, id)
	outcome := "ok"
	if err != nil {
		outcome = "refused"
	}
	s.metrics.keys.WithLabelValues(outcome).Inc()
	return err
}

// AuthorizePlayback is AuthorizeKey's rule for what the HTTP fallback serves
// besides the key (playlists, segments): not counted as a key request.
func (s *Service) AuthorizePlayback(r *http.Request, id content.VideoID) error {
	return s.authorizeKey(r, id)
}

func (s *Service) authorizeKey(r *http.Request, id content.VideoID) error {
	who, err := s.authenticate(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	terms, err := s.db.Video(ctx, id)
	if err != nil {
		return err
	}
	if terms.Price == 0 {
		// Free: the unlock at price 0 is the entitlement (idempotent).
		_, err := s.db.Unlock(ctx, who.acct.ID, id, s.cfg.Now())
		return err
	}
	ok, err := s.db.Entitled(ctx, who.acct.ID, id)
	if err != nil {
		return err
	}
	if !ok {
		return &wire.StatusError{Status: http.StatusForbidden, Msg: fmt.Sprintf("video %s: not entitled; unlock it first (price %d points)", id, terms.Price)}
	}
	return nil
}

// VideoPublished records a published video's price (DefaultPrice unless an
// admin set one before) and playback budget in the store.
func (s *Service) VideoPublished(ctx context.Context, m *content.Manifest) error {
	id := m.ID()
	terms, err := s.db.Video(ctx, id)
	price := s.cfg.DefaultPrice
	if err == nil {
		price = terms.Price // republishing keeps an admin's price
	} else if !errors.Is(err, coordinatordb.ErrUnknownVideo) {
		return err
	}
	budget := coordinatordb.PlaybackBudget(m)
	if err == nil && terms.PlaybackBudgetBytes == budget {
		return nil
	}
	return s.db.PutVideo(ctx, coordinatordb.VideoTerms{Video: id, Price: price, PlaybackBudgetBytes: budget}, s.cfg.Now())
}

// BootstrapAdmin creates the account username with password if it does not
// exist, and makes it an admin (an existing account keeps its password).
//
// A new admin's password must pass coordinatordb.ValidatePassword; it is
// checked before anything is written.
func BootstrapAdmin(ctx context.Context, store DB, username, password string, now time.Time) (coordinatordb.Account, error) {
	a, err := store.AccountByName(ctx, username)
	if errors.Is(err, coordinatordb.ErrNotFound) {
		if err := coordinatordb.ValidateUsername(username); err != nil {
			return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
		}
		if err := coordinatordb.ValidatePassword(username, password); err != nil {
			return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
		}
		a, err = store.CreateAccount(ctx, username, password, now)
		if errors.Is(err, coordinatordb.ErrUsernameTaken) { // created meanwhile by another coordinator
			a, err = store.AccountByName(ctx, username)
		}
	}
	if err != nil {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
	}
	if a.Role == coordinatordb.RoleSystem {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: that is a system account", username)
	}
	if err := store.SetRole(ctx, a.ID, coordinatordb.RoleAdmin); err != nil {
		return coordinatordb.Account{}, fmt.Errorf("bootstrap admin %q: %w", username, err)
	}
	a.Role = coordinatordb.RoleAdmin
	return a, nil
}
