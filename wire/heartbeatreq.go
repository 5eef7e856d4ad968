package wire

// ParseHeartbeatRequest parses b into req if b is a HeartbeatRequest of the
// plain shape edges send (the keys node_id, full, added, removed,
// used_bytes, served_bytes and disk_cap_bytes spelled as HeartbeatRequest
// spells them, each once; shard sets with the keys video, rendition,
// segment and shards, each once; strings of printable ASCII without
// escapes; integers in plain decimal; no nulls) and reports whether it
// was. A full inventory is thousands of shard sets, which encoding/json
// decodes at several µs each, more than the coordinator spends indexing
// them. It accepts only what encoding/json (with DisallowUnknownFields)
// decodes to the same request (FuzzParseHeartbeatRequest checks this);
// on false the caller decodes b with encoding/json, which answers every
// other body (and every refusal) as always. Live reports (live_watching,
// peer_rtt_ms) always take that path.
func ParseHeartbeatRequest(b []byte, req *HeartbeatRequest) bool {
	*req = HeartbeatRequest{}
	if !parseHeartbeatRequest(b, req) {
		*req = HeartbeatRequest{}
		return false
	}
	return true
}

func parseHeartbeatRequest(b []byte, req *HeartbeatRequest) bool {
	p := plainJSON{b: b}
	return p.object(func(key []byte) (uint8, bool) {
		var ok bool
		switch string(key) {
		case "node_id":
			var s []byte
			s, ok = p.str()
			req.NodeID = NodeID(s)
			return 1, ok
		case "full":
			req.Full, ok = p.bool()
			return 2, ok
		case "added":
			req.Added, ok = p.shardSets()
			return 4, ok
		case "removed":
			req.Removed, ok = p.shardSets()
			return 8, ok
		case "used_bytes":
			req.UsedBytes, ok = p.int64()
			return 16, ok
		case "served_bytes":
			req.ServedBytes, ok = p.int64()
			return 32, ok
		case "disk_cap_bytes":
			req.DiskCapBytes, ok = p.int64()
			return 64, ok
		}
		return 0, false
	}) && p.end()
}

// shardSets reads an array of shard sets (an empty array is an empty,
// non-nil slice, as encoding/json gives).
func (p *plainJSON) shardSets() ([]ShardSet, bool) {
	sets := []ShardSet{}
	ok := p.array(func() bool {
		sets = append(sets, ShardSet{})
		return p.shardSet(&sets[len(sets)-1])
	})
	return sets, ok
}

// shardSet reads one ShardSet object.
func (p *plainJSON) shardSet(set *ShardSet) bool {
	return p.object(func(key []byte) (uint8, bool) {
		var ok bool
		switch string(key) {
		case "video":
			set.Video, ok = p.videoID()
			return 1, ok
		case "rendition":
			set.Rendition, ok = p.smallInt()
			return 2, ok
		case "segment":
			set.Segment, ok = p.smallInt()
			return 4, ok
		case "shards":
			set.Shards = []int{}
			return 8, p.array(func() bool {
				v, ok := p.smallInt()
				set.Shards = append(set.Shards, v)
				return ok
			})
		}
		return 0, false
	})
}
