package live

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/wire"
)

func judgeTestKey(name string) (wire.NodeID, ed25519.PrivateKey) {
	s := sha256.Sum256([]byte("relay judge test " + name))
	k := ed25519.NewKeyFromSeed(s[:])
	return wire.NodeID(btr.KeyOf(k).String()), k
}

// The coordinator as the relays' judge, with real signatures and a real
// store: a child's accusation of its relay parent is upheld and, left
// unanswered, excludes the parent in the channel log with evidence an
// independent btr check accepts; the parent's children get SwitchAt = s*
// and its backups From = s*; once s* is published the trees are rebuilt
// without it, and a restart keeps it out. Outsiders, accusations of a
// non-parent, statements signed by someone else and forgeries are refused
// with nothing changed.
func TestRelayJudgeExcludesAStalledRelay(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "c.db")
	open := func() *coordinatordb.DB {
		db, err := coordinatordb.OpenConfig(ctx, dsn, coordinatordb.Config{PointsPerMB: 10, Password: coordinatordb.PasswordParams{Time: 1, MemKiB: 1024, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	_, judgeKey := judgeTestKey("coordinator")
	cfg := Config{Now: func() time.Time { return now }, RelayJudgeKey: judgeKey}
	s, err := New(ctx, cfg, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := db.CreateAccount(ctx, "owner", "correct horse battery", now)
	if err != nil {
		t.Fatal(err)
	}
	origin, okey := judgeTestKey("origin")
	created, err := s.CreateChannel(ctx, owner.ID, wire.CreateChannelRequest{Name: "judged"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthorizeIngest(origin, created.StreamKey); err != nil {
		t.Fatal(err)
	}
	var ck content.ContentKey
	g := &content.LiveGenesis{Channel: string(created.Channel.ID), Params: content.DefaultLiveParams(), KeyID: ck.ID(), TargetDuration: 1_000_000,
		Renditions: []content.LiveRendition{{Name: "360p", Bandwidth: 800_000}}}
	g.Sign(okey)
	chain, err := s.StartChain(ctx, origin, wire.LiveStartRequest{Genesis: g.Encode(), Key: ck[:]})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*content.LiveEntry
	publish := func(upTo uint64) {
		t.Helper()
		for seq := uint64(len(entries)); seq <= upTo; seq++ {
			prev := content.Hash(chain)
			if seq > 0 {
				prev = entries[seq-1].Hash()
			}
			e := &content.LiveEntry{Chain: chain, Seq: seq, Prev: prev, Segments: []content.Segment{{Duration: 1_000_000, Size: 4096, Root: content.Hash{1}}}}
			e.Sign(okey)
			if err := s.AppendEntry(ctx, origin, chain, e.Encode()); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
	}

	keys := map[wire.NodeID]ed25519.PrivateKey{}
	s.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: "http://o", UploadCap: 1})
	for _, name := range []string{"relay-a", "relay-b", "relay-c"} {
		id, k := judgeTestKey(name)
		keys[id] = k
		s.NodeUp(TreeNode{ID: id, Role: wire.RoleRelay, Addr: "http://" + name, UploadCap: 10_000_000, PricePerGB: 0.01})
	}
	var edges []wire.NodeID
	for _, name := range []string{"edge-a", "edge-b", "edge-c", "edge-d"} {
		id, k := judgeTestKey(name)
		keys[id] = k
		edges = append(edges, id)
		s.NodeUp(TreeNode{ID: id, Role: wire.RoleEdge, Addr: "http://" + name})
	}
	beat := func() map[wire.NodeID]*wire.LiveSet {
		sets := map[wire.NodeID]*wire.LiveSet{}
		for id := range keys {
			var watching []content.VideoID
			if slices.Contains(edges, id) {
				watching = []content.VideoID{chain}
			}
			if set := s.Heartbeat(id, watching, nil, now); set != nil {
				sets[id] = set
			}
		}
		return sets
	}
	beat()
	now = now.Add(MinRebuildInterval)
	beat()
	publish(2)

	// A child whose parent in some substream is a relay with a backup.
	s.treeMu.Lock()
	trees, backups := s.trees.out.Parent[chain], s.trees.out.Backup[chain]
	s.treeMu.Unlock()
	var child, parent, backup wire.NodeID
	sub := -1
	for j, tree := range trees {
		for _, v := range sortedKeys(tree) {
			if p := tree[v]; p != origin && j < len(backups) && backups[j][v] != "" {
				child, parent, backup, sub = v, p, backups[j][v], j
				break
			}
		}
		if sub >= 0 {
			break
		}
	}
	if sub < 0 {
		t.Fatalf("no node under a relay with a backup in %v", trees)
	}
	var notParent wire.NodeID
	for id := range keys {
		if id != parent && id != child && trees[sub][id] != child {
			notParent = id
			break
		}
	}
	accusation := func(signer ed25519.PrivateKey, accused wire.NodeID, seq uint64) *btr.Accusation {
		k, _ := btr.ParseNodeKey(string(accused))
		a := &btr.Accusation{Task: btr.RelayTask(chain, seq, sub, entries[seq].Encode()), Accused: k, Kind: btr.Omission}
		a.Sign(signer)
		return a
	}
	nothingChanged := func(when string) {
		t.Helper()
		if c := s.RelayJudgeCases(chain); len(c.Accusations) != 0 {
			t.Fatalf("%s: the judge holds %d accusations", when, len(c.Accusations))
		}
		if log, _ := s.BTRLog(chain); len(log.Statements) != 0 {
			t.Fatalf("%s: the log has %d statements", when, len(log.Statements))
		}
	}
	forged := accusation(keys[child], parent, 2).Encode()
	forged[len(forged)-1] ^= 1
	attacks := []struct {
		name   string
		sender wire.NodeID
		raw    []byte
		status int
	}{
		{"an accusation of a node that is not the sender's parent", child, accusation(keys[child], notParent, 2).Encode(), http.StatusBadRequest},
		{"an accusation someone else signed", notParent, accusation(keys[child], parent, 2).Encode(), http.StatusForbidden},
		{"an outsider's accusation", "outsider", accusation(keys[child], parent, 2).Encode(), http.StatusBadRequest},
		{"a forged signature", child, forged, http.StatusBadRequest},
		{"not a statement", child, []byte("SCBAjunk"), http.StatusBadRequest},
		{"an unknown chain", child, accusation(keys[child], parent, 2).Encode(), http.StatusNotFound},
	}
	for _, a := range attacks {
		id := chain
		if a.status == http.StatusNotFound {
			id = content.VideoID{9}
		}
		err := s.RelayStatement(ctx, a.sender, id, a.raw)
		if st, _ := wire.StatusOf(err); st != a.status {
			t.Fatalf("%s: %v, want status %d", a.name, err, a.status)
		}
		nothingChanged(a.name)
	}
	// A rebuttal by someone who is not the accused is refused too.
	push := &btr.Output{Task: btr.RelayTask(chain, 2, sub, entries[2].Encode())}
	push.Sign(keys[notParent])
	if err := s.RelayStatement(ctx, child, chain, (&btr.Rebuttal{Accusation: accusation(judgeKey, parent, 2), Output: push}).Encode()); err == nil {
		t.Fatal("a rebuttal of a push the sender did not sign was taken")
	}
	nothingChanged("a foreign rebuttal")

	// The child accuses its parent; the judge upholds it, unanswered.
	if err := s.RelayStatement(ctx, child, chain, accusation(keys[child], parent, 2).Encode()); err != nil {
		t.Fatal(err)
	}
	cases := s.RelayJudgeCases(chain)
	if len(cases.Accusations) != 1 || cases.Judge != wire.NodeID(btr.KeyOf(judgeKey).String()) {
		t.Fatalf("judge's cases: %+v", cases)
	}
	now = now.Add(time.Second + time.Millisecond) // past the answer window (one segment)
	s.tickRelayJudges(ctx, now)
	log, err := s.BTRLog(chain)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Excluded) != 1 || log.Excluded[0].Node != parent || log.Excluded[0].Kind != "omission" || log.RelayJudge != cases.Judge {
		t.Fatalf("log after the answer window: %+v", log)
	}
	x, err := btr.DecodeExclusion(log.Statements[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Check(btr.KeyOf(judgeKey), nil); err != nil {
		t.Fatalf("an independent check refuses the exclusion: %v", err)
	}
	switchAt := x.SwitchAt(relayParams(time.Second))
	if log.Excluded[0].SwitchAt != switchAt || switchAt <= 2 {
		t.Fatalf("switch at %d, want %d (after the current segment 2)", log.Excluded[0].SwitchAt, switchAt)
	}

	// The next heartbeats hand the child the switch and its backup the
	// standby from s*.
	sets := beat()
	route := func(id wire.NodeID) wire.LiveRoute {
		t.Helper()
		set := sets[id]
		if set == nil {
			t.Fatalf("%s got no new set", id)
		}
		for _, r := range set.Routes {
			if r.Chain == chain && r.Substream == sub {
				return r
			}
		}
		t.Fatalf("%s has no route of substream %d", id, sub)
		return wire.LiveRoute{}
	}
	if r := route(child); r.Parent != parent || r.BackupParent != backup || r.SwitchAt != switchAt {
		t.Fatalf("child's route %+v, want parent %s switching to %s at %d", r, parent, backup, switchAt)
	}
	if backup != origin {
		r := route(backup)
		i := slices.IndexFunc(r.Standby, func(sb wire.LiveStandby) bool { return sb.Child.NodeID == child })
		if i < 0 || r.Standby[i].From != switchAt {
			t.Fatalf("backup's standby %+v, want %s from %d", r.Standby, child, switchAt)
		}
	}

	// Once s* is published, the trees are rebuilt without the culprit.
	publish(switchAt)
	now = now.Add(MinRebuildInterval)
	beat()
	inTrees := func(s *Service) bool {
		for _, tree := range s.Trees()[chain] {
			for v, p := range tree {
				if v == parent || p == parent {
					return true
				}
			}
		}
		return false
	}
	if inTrees(s) {
		t.Fatalf("the excluded relay is still in the trees after s* = %d", switchAt)
	}

	// A restart keeps the exclusion (checked again against its stored judge
	// key, here a new one) and keeps the culprit out.
	now = now.Add(time.Minute)
	s2, err := New(ctx, Config{Now: func() time.Time { return now }}, open(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if log, _ := s2.BTRLog(chain); len(log.Excluded) != 1 || log.Excluded[0].Node != parent || log.Excluded[0].SwitchAt != switchAt {
		t.Fatalf("after restart: %+v", log)
	}
	s2.NodeUp(TreeNode{ID: origin, Role: wire.RoleOrigin, Addr: "http://o", UploadCap: 1})
	for id := range keys {
		s2.NodeUp(TreeNode{ID: id, Role: wire.RoleRelay, Addr: "http://x", UploadCap: 10_000_000})
		if slices.Contains(edges, id) {
			s2.NodeUp(TreeNode{ID: id, Role: wire.RoleEdge, Addr: "http://x"})
		}
	}
	s = s2
	beat()
	now = now.Add(MinRebuildInterval)
	beat()
	if len(s2.Trees()[chain]) == 0 || inTrees(s2) {
		t.Fatalf("after restart the excluded relay is back in the trees %v", s2.Trees()[chain])
	}
}
