package coordinator

import (
	"context"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/wire"
)

// webAdmin is the coordinator as the web app's admin pages see it
// (web.AdminData): the same figures as the admin JSON API (admin.go),
// plus rejections and flows from the store.
type webAdmin Coordinator

var _ web.AdminData = (*webAdmin)(nil)

func (wa *webAdmin) c() *Coordinator { return (*Coordinator)(wa) }

func (wa *webAdmin) Overview() wire.AdminOverview { return wa.c().Overview() }

func (wa *webAdmin) AdminNodes(ctx context.Context, after wire.NodeID, limit int) (wire.AdminNodesPage, error) {
	return wa.c().AdminNodes(ctx, after, limit)
}

func (wa *webAdmin) AdminVideos() []wire.AdminVideo { return wa.c().AdminVideos() }

func (wa *webAdmin) LiveChannels() []wire.ChannelInfo { return wa.c().live.Channels() }

func (wa *webAdmin) AdminVideo(id content.VideoID) (wire.AdminVideo, bool) {
	rows := wa.c().adminVideos(&id, true)
	if len(rows) == 0 {
		return wire.AdminVideo{}, false
	}
	return rows[0], true
}

func (wa *webAdmin) AdminAccounts(ctx context.Context, after int64, limit int) (wire.AdminAccountsPage, error) {
	return wa.c().AdminAccounts(ctx, after, limit)
}

func (wa *webAdmin) AccountViewerKeys(ctx context.Context, accountID int64) ([]wire.NodeID, error) {
	return wa.c().store.AccountViewerKeys(ctx, accountID)
}

func (wa *webAdmin) Rejections(ctx context.Context) (map[string]int64, error) {
	counts, err := wa.c().store.RejectionCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(coordinatordb.Reasons))
	for _, reason := range coordinatordb.Reasons {
		out[string(reason)] = counts[reason]
	}
	return out, nil
}

func (wa *webAdmin) FlowsToViewer(ctx context.Context, viewer wire.NodeID, since, until time.Time) ([]wire.FlowInfo, error) {
	fs, err := wa.c().store.FlowsToViewer(ctx, viewer, since, until)
	return flowInfos(fs), err
}

func (wa *webAdmin) FlowsFromEdge(ctx context.Context, edge wire.NodeID, since, until time.Time) ([]wire.FlowInfo, error) {
	fs, err := wa.c().store.FlowsFromEdge(ctx, edge, since, until)
	return flowInfos(fs), err
}

func flowInfos(fs []coordinatordb.Flow) []wire.FlowInfo {
	out := make([]wire.FlowInfo, len(fs))
	for i, f := range fs {
		out[i] = wire.FlowInfo{Edge: f.Edge, Viewer: f.Viewer, Video: f.Video, Bucket: f.Bucket, Bytes: f.Bytes}
	}
	return out
}
