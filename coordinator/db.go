package coordinator

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// NodeRecord is what the coordinator persists about a registered node.
// Inventory and liveness are soft state rebuilt from heartbeats (an edge
// sends a full inventory after registering), so they are not stored.
type NodeRecord struct {
	Request      wire.RegisterRequest
	RegisteredAt time.Time
}

// VideoRecord is one published catalogue entry.
type VideoRecord struct {
	ID       string // hex video id (SHA-256 of Manifest)
	Manifest []byte // signed manifest bytes, verified before storing
	Key      []byte // 16-byte content key, or nil if the origin did not publish it
	Origin   wire.NodeID
}

// BanRecord remembers why a node was banned.
type BanRecord struct {
	Node   wire.NodeID
	Reason string
	At     time.Time
}

// DB is the coordinator's durable state. The in-memory lookup index is built
// from it at start and written through on every change, so a DB never sits
// on the lookup hot path. Implementations must be safe for concurrent use.
type DB interface {
	PutNode(ctx context.Context, rec NodeRecord) error
	DeleteNode(ctx context.Context, id wire.NodeID) error
	Nodes(ctx context.Context) ([]NodeRecord, error)

	PutVideo(ctx context.Context, rec VideoRecord) error
	Videos(ctx context.Context) ([]VideoRecord, error)

	PutBan(ctx context.Context, rec BanRecord) error
	Bans(ctx context.Context) ([]BanRecord, error)
}

// MemDB is a DB held in memory: state lives as long as the process.
type MemDB struct {
	mu     sync.Mutex
	nodes  map[wire.NodeID]NodeRecord
	videos map[string]VideoRecord
	bans   map[wire.NodeID]BanRecord
}

// NewMemDB returns an empty in-memory DB.
func NewMemDB() *MemDB {
	return &MemDB{
		nodes:  make(map[wire.NodeID]NodeRecord),
		videos: make(map[string]VideoRecord),
		bans:   make(map[wire.NodeID]BanRecord),
	}
}

func (d *MemDB) PutNode(_ context.Context, rec NodeRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes[rec.Request.NodeID] = rec
	return nil
}

func (d *MemDB) DeleteNode(_ context.Context, id wire.NodeID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, id)
	return nil
}

func (d *MemDB) Nodes(context.Context) ([]NodeRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]NodeRecord, 0, len(d.nodes))
	for _, r := range d.nodes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b NodeRecord) int { return strings.Compare(string(a.Request.NodeID), string(b.Request.NodeID)) })
	return out, nil
}

func (d *MemDB) PutVideo(_ context.Context, rec VideoRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec.Manifest = slices.Clone(rec.Manifest)
	rec.Key = slices.Clone(rec.Key)
	d.videos[rec.ID] = rec
	return nil
}

func (d *MemDB) Videos(context.Context) ([]VideoRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]VideoRecord, 0, len(d.videos))
	for _, r := range d.videos {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b VideoRecord) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (d *MemDB) PutBan(_ context.Context, rec BanRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bans[rec.Node] = rec
	return nil
}

func (d *MemDB) Bans(context.Context) ([]BanRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]BanRecord, 0, len(d.bans))
	for _, r := range d.bans {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b BanRecord) int { return strings.Compare(string(a.Node), string(b.Node)) })
	return out, nil
}
