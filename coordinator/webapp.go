package coordinator

import (
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/web"
	"github.com/swarmcast/swarmcast/wire"
)

// webCatalogue is the control plane as the web app sees it (web.Catalogue).
type webCatalogue Coordinator

func (wc *webCatalogue) Videos() []wire.VideoInfo {
	c := (*Coordinator)(wc)
	c.mu.RLock()
	out := make([]wire.VideoInfo, 0, len(c.st.videos))
	for _, v := range c.st.videos {
		out = append(out, v.info)
	}
	c.mu.RUnlock()
	sortVideos(out)
	return out
}

func (wc *webCatalogue) Video(id content.VideoID) (wire.VideoInfo, bool) {
	c := (*Coordinator)(wc)
	c.mu.RLock()
	defer c.mu.RUnlock()
	v := c.st.videos[id]
	if v == nil {
		return wire.VideoInfo{}, false
	}
	return v.info, true
}

func (wc *webCatalogue) Node(id wire.NodeID) (web.NodeStatus, bool) {
	c := (*Coordinator)(wc)
	now := c.cfg.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.st.nodes[id]
	if n == nil {
		return web.NodeStatus{}, false
	}
	return web.NodeStatus{
		NodeInfo: wire.NodeInfo{
			NodeID: n.id, Role: n.role, Addr: n.addr, Region: n.region,
			Alive: c.st.alive(n, now), LastSeen: n.lastSeen, Shards: n.shards,
			UsedBytes: n.usedBytes, DiskCapBytes: n.diskCap, UploadCapBytes: n.uploadCap,
			Banned: n.banned,
		},
		UploadBytesPerSec: n.servedRate,
	}, true
}

// Web is the coordinator's web app (mounted by Handler); tests walk its
// registered routes.
func (c *Coordinator) Web() *web.App { return c.web }
