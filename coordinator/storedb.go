package coordinator

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

// StoreDB is the coordinator's DB over the durable store: the catalogue and
// bans are written through to it (so they survive a restart), while node
// records stay in memory (nodes re-register with a full inventory after a
// coordinator restart anyway, see load).
type StoreDB struct {
	*MemDB // nodes
	cat    coordinatordb.Catalogue
	now    func() time.Time
}

// NewStoreDB returns a DB whose catalogue and bans live in cat.
func NewStoreDB(ctx context.Context, cat coordinatordb.Catalogue, now func() time.Time) (*StoreDB, error) {
	if now == nil {
		now = time.Now
	}
	if err := cat.EnsureCatalogue(ctx); err != nil {
		return nil, err
	}
	return &StoreDB{MemDB: NewMemDB(), cat: cat, now: now}, nil
}

func (d *StoreDB) PutVideo(ctx context.Context, rec VideoRecord) error {
	return d.cat.PutCatalogueVideo(ctx, coordinatordb.CatalogueVideo{ID: rec.ID, Manifest: rec.Manifest, Key: rec.Key, Origin: rec.Origin}, d.now())
}

func (d *StoreDB) Videos(ctx context.Context) ([]VideoRecord, error) {
	vs, err := d.cat.CatalogueVideos(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]VideoRecord, len(vs))
	for i, v := range vs {
		out[i] = VideoRecord{ID: v.ID, Manifest: v.Manifest, Key: v.Key, Origin: v.Origin}
	}
	return out, nil
}

func (d *StoreDB) PutBan(ctx context.Context, rec BanRecord) error {
	return d.cat.PutBan(ctx, rec.Node, rec.Reason, rec.At)
}

func (d *StoreDB) Bans(ctx context.Context) ([]BanRecord, error) {
	bs, err := d.cat.Bans(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]BanRecord, len(bs))
	for i, b := range bs {
		out[i] = BanRecord{Node: b.Node, Reason: b.Reason, At: b.At}
	}
	return out, nil
}

var _ DB = (*StoreDB)(nil)

// checkViewerKey reports whether id looks like a hex ed25519 public key
// (the only viewer ids order limits can name).
func checkViewerKey(id wire.NodeID) bool { return checkNodeID(id) == nil }
