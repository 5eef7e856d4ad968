package wire

import (
	"math"

	"github.com/swarmcast/swarmcast/content"
)

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
	p := lookupParser{b: b}
	if !p.byte('{') {
		return false
	}
	var seen uint8
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			key, ok := p.str()
			if !ok || !p.byte(':') {
				return false
			}
			var bit uint8
			switch string(key) {
			case "node_id":
				bit = 1
				s, ok := p.str()
				if !ok {
					return false
				}
				req.NodeID = NodeID(s)
			case "full":
				bit = 2
				if req.Full, ok = p.bool(); !ok {
					return false
				}
			case "added":
				bit = 4
				if req.Added, ok = p.shardSets(); !ok {
					return false
				}
			case "removed":
				bit = 8
				if req.Removed, ok = p.shardSets(); !ok {
					return false
				}
			case "used_bytes":
				bit = 16
				if req.UsedBytes, ok = p.int64(); !ok {
					return false
				}
			case "served_bytes":
				bit = 32
				if req.ServedBytes, ok = p.int64(); !ok {
					return false
				}
			case "disk_cap_bytes":
				bit = 64
				if req.DiskCapBytes, ok = p.int64(); !ok {
					return false
				}
			default:
				return false
			}
			if seen&bit != 0 {
				return false // a repeated key: encoding/json's rules decide
			}
			seen |= bit
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return false
			}
		}
	}
	p.space()
	return p.i == len(p.b)
}

// bool reads true or false.
func (p *lookupParser) bool() (bool, bool) {
	p.space()
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// int64 reads an integer in plain decimal (see int).
func (p *lookupParser) int64() (int64, bool) {
	v, ok := p.int()
	return int64(v), ok
}

// smallInt reads an integer (see int) that fits an int on every platform
// (a rendition, segment or shard index).
func (p *lookupParser) smallInt() (int, bool) {
	v, ok := p.int()
	return v, ok && v >= math.MinInt32 && v <= math.MaxInt32
}

// shardSets reads an array of shard sets (an empty array is an empty,
// non-nil slice, as encoding/json gives).
func (p *lookupParser) shardSets() ([]ShardSet, bool) {
	if !p.byte('[') {
		return nil, false
	}
	sets := []ShardSet{}
	if p.byte(']') {
		return sets, true
	}
	for {
		var set ShardSet
		if !p.shardSet(&set) {
			return nil, false
		}
		sets = append(sets, set)
		if p.byte(']') {
			return sets, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// shardSet reads one ShardSet object.
func (p *lookupParser) shardSet(set *ShardSet) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	var seen uint8
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		var bit uint8
		switch string(key) {
		case "video":
			bit = 1
			s, ok := p.str()
			if !ok || len(s) != 64 {
				return false
			}
			id, err := content.ParseVideoID(string(s))
			if err != nil {
				return false
			}
			set.Video = id
		case "rendition":
			bit = 2
			if set.Rendition, ok = p.smallInt(); !ok {
				return false
			}
		case "segment":
			bit = 4
			if set.Segment, ok = p.smallInt(); !ok {
				return false
			}
		case "shards":
			bit = 8
			if !p.byte('[') {
				return false
			}
			set.Shards = []int{}
			if !p.byte(']') {
				for {
					v, ok := p.smallInt()
					if !ok {
						return false
					}
					set.Shards = append(set.Shards, v)
					if p.byte(']') {
						break
					}
					if !p.byte(',') {
						return false
					}
				}
			}
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}
