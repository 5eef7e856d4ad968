package main

import (
	"bytes"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// run executes a fresh command tree with args and returns everything it
// printed and its error. No case here touches the network or runs long:
// each fails while checking flags, before any role starts.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// aVideoID is well formed; no store holds it.
// playersAreEdgesScenario is a scenario the simulator runs but the
// emulation refuses: its players are edges too.
const playersAreEdgesScenario = `{
  "name": "players-are-edges", "seed": 1, "duration_s": 300,
  "titles": {"count": 12, "duration_s": 30, "bitrate_mbps": 0.372},
  "edges": {"count": 12, "upload_mbps": 1.16, "disk_gb": 0.0017, "multipliers": [0.2, 0.5, 1]},
  "viewers": {"count": 12, "mode": "continuous", "join_interval_s": 10, "players_are_edges": true}
}`

// writeFile is a setup that writes content to name in the working directory.
func writeFile(name, content string) func(t *testing.T) {
	return func(t *testing.T) {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const aVideoID = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// TestBadInputSaysWhatToDoAndLeavesNothing runs every command with each bad
// flag or argument in a fresh working directory (so defaults such as
// swarmcast-store, swarmcast-coordinator.db and coordinator.key land
// there) and checks that the error says what to do and that the directory
// is exactly as the case's setup left it: nothing created, nothing removed.
// Relative paths in args are inside that directory.
func TestBadInputSaysWhatToDoAndLeavesNothing(t *testing.T) {
	t.Setenv("SWARMCAST_PASSWORD", "")
	t.Setenv("SWARMCAST_TOKEN", "")
	t.Setenv("SWARMCAST_EDGE_TOKEN", "")
	// A port that refuses connections: nothing listens on the discard port.
	const down = "http://127.0.0.1:9"
	edge := func(extra ...string) []string {
		return append([]string{"edge", "--dir", "edge", "--coordinator", down}, extra...)
	}
	aFile := func(name string) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.WriteFile(name, []byte("not a video\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// busy stands for a port the case holds open for its duration.
	busy := "busy-port"
	cases := []struct {
		name  string
		setup func(t *testing.T)
		args  []string
		want  []string // substrings of the error
	}{
		{name: "unknown command", args: []string{"nosuch"}, want: []string{`unknown command "nosuch" for "swarmcast"`, "swarmcast --help"}},
		{name: "misspelt command", args: []string{"plna"}, want: []string{"did you mean plan or play?"}},
		{name: "unknown plan algorithm", args: []string{"plan", "avrdo"}, want: []string{`unknown command "avrdo" for "swarmcast plan"`, "did you mean avardo?", "swarmcast plan --help"}},
		{name: "unknown bench", args: []string{"bench", "nosuch"}, want: []string{`unknown command "nosuch" for "swarmcast bench"`}},
		{name: "unknown account action", args: []string{"account", "delete"}, want: []string{`for "swarmcast account"`}},
		{name: "unknown flag", args: []string{"edge", "--bogus"}, want: []string{"unknown flag: --bogus", "see 'swarmcast edge --help'"}},
		{name: "stray argument", args: []string{"coordinator", "extra"}, want: []string{`unknown command "extra" for "swarmcast coordinator"`}},

		// coordinator: all checked before the SQLite file and the key exist.
		{name: "coordinator admin without password", args: []string{"coordinator", "--admin", "admin"}, want: []string{"--admin", "want USER:PASSWORD"}},
		{name: "coordinator admin empty password", args: []string{"coordinator", "--admin", "admin:"}, want: []string{"want USER:PASSWORD"}},
		{name: "coordinator admin short password", args: []string{"coordinator", "--admin", "admin:short"}, want: []string{"--admin", "at least 8"}},
		{name: "coordinator admin password is username", args: []string{"coordinator", "--admin", "adminadmin:adminadmin"}, want: []string{"must not be the username"}},
		{name: "coordinator admin bad username", args: []string{"coordinator", "--admin", "Admin!:change-me-please"}, want: []string{"--admin: username", "lower-case letters"}},
		{name: "coordinator db in missing directory", args: []string{"coordinator", "--db", "sqlite:nonexistent/x.db"}, want: []string{"directory nonexistent does not exist", "mkdir -p nonexistent"}},
		{name: "coordinator db is a directory", setup: func(t *testing.T) { mkdir(t, "dbdir") }, args: []string{"coordinator", "--db", "sqlite:dbdir"}, want: []string{"is a directory", "name a file in it"}},
		{name: "coordinator db scheme", args: []string{"coordinator", "--db", "mysql://x"}, want: []string{"unsupported store", "set --db to sqlite:PATH or postgres://"}},
		{name: "coordinator db password not echoed", args: []string{"coordinator", "--db", "mysql://u:secret@h/db"}, want: []string{"unsupported store", "xxxxx"}},
		{name: "coordinator empty sqlite path", args: []string{"coordinator", "--db", "sqlite:"}, want: []string{"empty SQLite path", "set --db"}},
		{name: "coordinator identity in missing directory", args: []string{"coordinator", "--identity", "keys/c.key"}, want: []string{"--identity", "directory keys does not exist"}},
		{name: "coordinator listen", args: []string{"coordinator", "--listen", "127.0.0.1"}, want: []string{"--listen", "want HOST:PORT"}},
		{name: "coordinator advertise", args: []string{"coordinator", "--advertise", "example.com:7000"}, want: []string{"--advertise", "has no scheme"}},
		{name: "coordinator heartbeat", args: []string{"coordinator", "--heartbeat", "0s"}, want: []string{"--heartbeat", "must be positive"}},
		{name: "coordinator hysteresis", args: []string{"coordinator", "--origin-pool-hysteresis", "1"}, want: []string{"--origin-pool-hysteresis", "[0,1)"}},
		{name: "coordinator seed", args: []string{"coordinator", "--seed", "x"}, want: []string{`invalid argument "x" for "--seed"`, "swarmcast coordinator --help"}},
		{name: "coordinator postgres down", args: []string{"coordinator", "--db", "postgres://u:p@127.0.0.1:9/db"}, want: []string{"open postgres store", "set --db"}},
		// Only binding can find a port in use: the store and key made
		// before it are taken back.
		{name: "coordinator port in use", args: []string{"coordinator", "--listen", busy, "--admin", "admin:" + testPassword}, want: []string{"address already in use", "set --listen"}},

		// edge: the cache directory is made only after every check, and
		// removed again if the login is refused.
		{name: "origin negative procs", args: []string{"origin", "--procs", "-2"}, want: []string{"--procs -2", "want 0 (one per core) or a positive count"}},
		{name: "edge negative procs", args: edge("--procs", "-1"), want: []string{"--procs -1", "want 0 (one per core) or a positive count"}},
		{name: "edge without coordinator", args: []string{"edge"}, want: []string{"--coordinator is required", "http://127.0.0.1:7000"}},
		{name: "edge coordinator without scheme", args: edge("--coordinator", "127.0.0.1:7000"), want: []string{"has no scheme", "did you mean http://127.0.0.1:7000?"}},
		{name: "edge coordinator scheme", args: edge("--coordinator", "ftp://127.0.0.1:7000"), want: []string{`scheme "ftp"`, "http://127.0.0.1:7000"}},
		{name: "edge coordinator port", args: edge("--coordinator", "http://127.0.0.1:70000"), want: []string{"port", "1 to 65535"}},
		{name: "edge one bad coordinator of two", args: edge("--coordinator", down+",localhost:7001"), want: []string{`"localhost:7001" has no scheme`}},
		{name: "edge without dir", args: []string{"edge", "--dir", "", "--coordinator", down}, want: []string{"no cache directory given", "set --dir DIR"}},
		{name: "edge dir is a file", setup: aFile("edge"), args: edge(), want: []string{"--dir edge is a file"}},
		{name: "edge dir in missing directory", args: edge("--dir", "no/such/edge"), want: []string{"directory no/such does not exist", "mkdir -p"}},
		{name: "edge disk without unit", args: edge("--disk", "1.5"), want: []string{"--disk", `"1.5" has no unit`, "1.5GB", "MiB"}},
		{name: "edge disk fraction of a byte", args: edge("--disk", "1.5B"), want: []string{"--disk", "not a whole number of bytes", "1.5GB"}},
		{name: "edge disk unit", args: edge("--disk", "1.5XB"), want: []string{"--disk", `unknown unit "xb"`, "GB", "GiB"}},
		{name: "edge disk not a number", args: edge("--disk", "lots"), want: []string{"--disk", "want a number followed by a unit", "1.5GB"}},
		{name: "edge disk negative", args: edge("--disk", "-1GB"), want: []string{"--disk", "must not be negative"}},
		{name: "edge disk zero", args: edge("--disk", "0GB"), want: []string{"--disk must be more than 0"}},
		{name: "edge upload without unit", args: edge("--upload", "10"), want: []string{"--upload", `"10" has no unit`, "10Mbit"}},
		{name: "edge upload fraction of a byte", args: edge("--upload", "1001bit"), want: []string{"--upload", "not a whole number of bytes per second", "2MB/s"}},
		{name: "edge upload unit", args: edge("--upload", "10furlongs"), want: []string{"--upload", `unknown unit "furlongs"`, "Mbit"}},
		{name: "edge preset", args: edge("--preset", "0.3"), want: []string{"--preset", "want 0.2, 0.5 or 1"}},
		{name: "edge watched ttl", args: edge("--watched-ttl", "0s"), want: []string{"--watched-ttl must be positive"}},
		{name: "edge coordinator key", args: edge("--coordinator-key", "abc"), want: []string{"--coordinator-key", "64 hex digits"}},
		{name: "edge fault", args: edge("--byzantine", "sneaky"), want: []string{"--byzantine"}},
		{name: "edge listen", args: edge("--listen", "127.0.0.1:99999"), want: []string{"--listen", "want 0 to 65535"}},
		{name: "edge player listen", args: edge("--player-listen", "localhost"), want: []string{"--player-listen", "want HOST:PORT"}},
		{name: "edge advertise", args: edge("--advertise", "ftp://x"), want: []string{"--advertise", "want http or https"}},
		{name: "edge settle interval", args: edge("--settle-interval", "0s"), want: []string{"--settle-interval must be positive"}},
		{name: "edge user without password", args: edge("--user", "alice"), want: []string{"--user needs --password"}},
		{name: "edge password without user", args: edge("--password", testPassword), want: []string{"--password needs --user"}},
		{name: "edge coordinator down", args: edge("--user", "alice", "--password", testPassword), want: []string{"log in as alice", "connection refused", "is swarmcast coordinator running at http://127.0.0.1:9?"}},

		// origin: reads a store, never makes one.
		{name: "origin without store", args: []string{"origin", "--store", "", "--coordinator", down}, want: []string{"no store directory given", "set --store DIR"}},
		{name: "origin store not ingested", args: []string{"origin", "--store", "empty", "--coordinator", down}, want: []string{"--store empty is not a store", "swarmcast ingest --store empty"}},
		{name: "origin default store not ingested", args: []string{"origin", "--coordinator", down}, want: []string{"is not a store"}},
		{name: "origin without coordinator", args: []string{"origin"}, want: []string{"--coordinator is required"}},
		{name: "origin coordinator without scheme", args: []string{"origin", "--coordinator", "127.0.0.1:7000"}, want: []string{"did you mean http://127.0.0.1:7000?"}},
		{name: "origin cache size", args: []string{"origin", "--cache", "1.5XB"}, want: []string{"--cache", `unknown unit "xb"`}},
		{name: "origin cache without unit", args: []string{"origin", "--cache", "256"}, want: []string{"--cache", "has no unit"}},

		// ingest: the store is made only for an input that exists, and
		// removed again if packaging fails.
		{name: "ingest without input", args: []string{"ingest"}, want: []string{"give exactly one video file or HLS directory (or --sample)"}},
		{name: "ingest missing input", args: []string{"ingest", "missing.mp4"}, want: []string{"missing.mp4: no such file or directory", "give a video file or an MPEG-TS HLS directory"}},
		{name: "ingest missing absolute input", args: []string{"ingest", "/nonexistent-swarmcast/missing.mp4"}, want: []string{"no such file or directory", "--sample"}},
		{name: "ingest store is a file", setup: aFile("store"), args: []string{"ingest", "--store", "store", "--sample"}, want: []string{"--store store is a file"}},
		{name: "ingest store in missing directory", args: []string{"ingest", "--store", "a/b", "--sample"}, want: []string{"directory a does not exist"}},
		{name: "ingest k", args: []string{"ingest", "--sample", "--k", "0"}, want: []string{"k=0 out of range", "set --k and --n-max"}},
		{name: "ingest n-max", args: []string{"ingest", "--sample", "--k", "8", "--n-max", "8"}, want: []string{"n_max=8 out of range"}},
		{name: "ingest not a video", setup: aFile("notes.mp4"), args: []string{"ingest", "notes.mp4"}, want: []string{"notes.mp4"}},

		// verify: only reads.
		{name: "verify store missing", args: []string{"verify", "--store", "nostore", aVideoID}, want: []string{"--store nostore is not a store"}},
		{name: "verify default store missing", args: []string{"verify", aVideoID}, want: []string{"is not a store"}},
		{name: "verify store is a file", setup: aFile("file"), args: []string{"verify", "--store", "file", aVideoID}, want: []string{"is not a store"}},
		{name: "verify bad id", args: []string{"verify", "abc"}, want: []string{"want 64 hex characters", "swarmcast ingest printed"}},
		{name: "verify without id", args: []string{"verify"}, want: []string{"requires at least 1 arg"}},

		// play: the coordinator and the video are checked before any URL.
		{name: "play without id", args: []string{"play"}, want: []string{"give exactly one video id", "64 hex digits"}},
		{name: "play bad id", args: []string{"play", "abc"}, want: []string{"want 64 hex characters"}},
		{name: "play without coordinator", args: []string{"play", aVideoID}, want: []string{"no coordinator", "--coordinator http://127.0.0.1:7000"}},
		{name: "play coordinator without scheme", args: []string{"play", aVideoID, "--coordinator", "127.0.0.1:7000"}, want: []string{"did you mean http://127.0.0.1:7000?"}},
		{name: "play gateway address", args: []string{"play", aVideoID, "--coordinator", down, "--listen", "127.0.0.1:99999"}, want: []string{"--listen", "want 0 to 65535"}},
		{name: "play without account", args: []string{"play", aVideoID, "--coordinator", down}, want: []string{"play needs an account", "--user NAME --password PASS", "swarmcast account signup"}},
		{name: "play user without password", args: []string{"play", aVideoID, "--coordinator", down, "--user", "bob"}, want: []string{"--user needs --password"}},
		{name: "play coordinator down", args: []string{"play", aVideoID, "--coordinator", down, "--user", "bob", "--password", "bob-password-1"}, want: []string{"coordinator at http://127.0.0.1:9 does not answer", "is swarmcast coordinator running there?"}},
		{name: "play headless speed", args: []string{"play", aVideoID, "--coordinator", down, "--headless", "--speed", "0"}, want: []string{"--speed", "must be positive"}},

		{name: "account without credentials", args: []string{"account", "signup", "--coordinator", down}, want: []string{"need --coordinator, --user and --password"}},
		{name: "account coordinator down", args: []string{"account", "signup", "--coordinator", down, "--user", "alice", "--password", testPassword}, want: []string{"sign up alice", "is swarmcast coordinator running at http://127.0.0.1:9?"}},
		{name: "account show coordinator down", args: []string{"account", "show", "--coordinator", down, "--user", "alice", "--password", testPassword}, want: []string{"log in as alice", "is swarmcast coordinator running"}},
		{name: "account coordinator without scheme", args: []string{"account", "signup", "--coordinator", "127.0.0.1:7000", "--user", "alice", "--password", testPassword}, want: []string{"did you mean http://127.0.0.1:7000?"}},

		{name: "demo sizes", args: []string{"demo", "--edges", "0"}, want: []string{"need --edges ≥ 1"}},
		{name: "sim unknown scenario", args: []string{"sim", "seed-capstne"}, want: []string{`scenario "seed-capstne" is neither a built-in`, "seed-capstone", "scale"}},
		{name: "sim bad scenario file", setup: aFile("bad.json"), args: []string{"sim", "bad.json"}, want: []string{"scenario:", "invalid character"}},
		{name: "sim plots in missing directory", args: []string{"sim", "seed-capstone", "--plots", "out/plots"}, want: []string{"--plots", "directory out does not exist"}},
		{name: "demo churn", args: []string{"demo", "--churn", "2"}, want: []string{"--churn must be in [0,1]"}},
		{name: "demo report in missing directory", args: []string{"demo", "--report", "out/report.json"}, want: []string{"--report", "directory out does not exist"}},
		{name: "demo linger", args: []string{"demo", "--linger", "-1s"}, want: []string{"--linger", "must be 0 or more"}},

		{name: "bench serve rounds", args: []string{"bench", "serve", "--rounds", "0"}, want: []string{"--rounds must be positive"}},
		{name: "bench serve role", args: []string{"bench", "serve", "--role", "coordinator"}, want: []string{`--role "coordinator": want edge or origin`}},
		{name: "bench serve duration", args: []string{"bench", "serve", "--duration", "-1s"}, want: []string{"--duration must be positive"}},
		{name: "bench lookup edges", args: []string{"bench", "lookup", "--edges", "0"}, want: []string{"--edges must be positive"}},
		{name: "bench coordinator edges", args: []string{"bench", "coordinator", "--edges", "0"}, want: []string{"--edges must be positive"}},
		{name: "bench coordinator unbounded", args: []string{"bench", "coordinator", "--duration", "2h"}, want: []string{"--duration 2h0m0s: at most 30m0s"}},
		{name: "bench coordinator window", args: []string{"bench", "coordinator", "--segments", "4"}, want: []string{"--window 8 is longer than a title (--segments 4)"}},
		{name: "emulate unknown scenario", args: []string{"emulate", "nosuch"}, want: []string{`scenario "nosuch" is neither a built-in`}},
		{name: "emulate players as edges", setup: writeFile("scenario.json", playersAreEdgesScenario), args: []string{"emulate", "scenario.json"}, want: []string{"the emulation does not run viewers.players_are_edges"}},

		{name: "avardo negative blocks", args: []string{"plan", "avardo", "--blocks", "-5"}, want: []string{"Blocks is -5, want ≥ 0", "set --blocks"}},
		{name: "avardo no blocks", args: []string{"plan", "avardo", "--blocks", "0"}, want: []string{"at least one block is needed"}},
		{name: "avardo not a number", args: []string{"plan", "avardo", "--blocks", "many"}, want: []string{`invalid argument "many" for "--blocks"`, "swarmcast plan avardo --help"}},
		{name: "avardo stream rate", args: []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "10", "--stream-gbps", "0"}, want: []string{"StreamGbps is 0", "set --stream-gbps"}},
		{name: "avardo utilisation", args: []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "10", "--utilisation", "1.5"}, want: []string{"want in (0, 1]", "set --utilisation"}},
		{name: "avardo too few servers", args: []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "5"}, want: []string{"storage constraint cannot be met"}},
		{name: "avardo missing trace", args: []string{"plan", "avardo", "--trace", "none.csv"}, want: []string{"open trace"}},
		{name: "avardo plot in missing directory", args: []string{"plan", "avardo", "--plot", "no/figs"}, want: []string{"--plot", "directory no does not exist"}},
		{name: "ravo clusters", args: []string{"plan", "ravo", "--clusters", "1,x"}, want: []string{`--clusters: "x" is not a positive integer`, "1,4,10"}},
		{name: "ravo solver", args: []string{"plan", "ravo", "--solver", "cplex"}, want: []string{`unknown --solver "cplex"`, "auto, gonum or coin"}},
		{name: "cocos delays", args: []string{"plan", "cocos", "--delays", "800,0"}, want: []string{`--delays: "0" is not a positive integer`}},
		{name: "cocos sweep channels", args: []string{"plan", "cocos", "--sweep-channels", "ten"}, want: []string{`--sweep-channels: "ten"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			if tc.setup != nil {
				tc.setup(t)
			}
			args := slices.Clone(tc.args)
			if i := slices.Index(args, busy); i >= 0 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				args[i] = ln.Addr().String()
			}
			before := listTree(t, dir)
			out, err := run(t, args...)
			if err == nil {
				t.Fatalf("swarmcast %s succeeded; output:\n%s", strings.Join(args, " "), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := listTree(t, dir); !slices.Equal(before, after) {
				t.Errorf("swarmcast %s changed its working directory:\nbefore %q\nafter  %q", strings.Join(args, " "), before, after)
			}
		})
	}
	if _, err := os.Stat("/nonexistent-swarmcast"); err == nil {
		t.Error("ingest of a missing absolute path created its directory")
	}
}

// listTree lists every path under dir, relative and sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func mkdir(t *testing.T, name string) {
	t.Helper()
	if err := os.Mkdir(name, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestGroupsWithoutSubcommandPrintHelp: a bare group is a request for its
// help, not an error.
func TestGroupsWithoutSubcommandPrintHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"plan"}, {"bench"}, {"account"}} {
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("swarmcast %v: %v", args, err)
		}
		if !strings.Contains(out, "Available Commands:") {
			t.Fatalf("swarmcast %v printed no command list:\n%s", args, out)
		}
	}
}

// TestFreshTreeEachTime: flag values do not leak between command trees, so
// tests (and main) may build as many as they like.
func TestFreshTreeEachTime(t *testing.T) {
	if _, err := run(t, "plan", "avardo", "--blocks", "-5"); err == nil {
		t.Fatal("negative blocks accepted")
	}
	out, err := run(t, "plan", "avardo", "--blocks", "3000", "--videos", "300", "--slots", "100", "--servers", "40")
	if err != nil || !strings.HasPrefix(out, "AVARDO: 3000 blocks, 100 slots/server, 40 servers, n0 = 30") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestParseBytesAndRates(t *testing.T) {
	for in, want := range map[string]int64{
		"1.5GB": 1_500_000_000, "512MiB": 512 << 20, "1000000B": 1_000_000, " 2 kb ": 2000, "0B": 0,
		"1.1GB": 1_100_000_000, "0.5KiB": 512, "2TiB": 2 << 40, "8388607TiB": 8388607 << 40,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]int64{"10Mbit": 1_250_000, "800kbit": 100_000, "2MB/s": 2_000_000, "1MiB/s": 1 << 20, "8bit": 1, "1.5Mbit": 187_500, "0.5KB/s": 500} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GB", "-1GB", "1.5XB", "NaNGB", "1e30TB", "1e9B", "1/2GB", "1.5", "1000000", "0", "1.5B", "0.3KiB", "1..5GB", ".GB", "8388608TiB", "Inf"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"10", "10MB", "2furlongs/s", "-1Mbit", "1bit", "1001bit", "0.5B/s", "1e3kbit"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// FuzzParseBytes: any string is refused or read as an exact, non-negative
// whole number of bytes; never a panic.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"1.5GB", "512MiB", "1000000B", "1.5", "1.5B", "-1GB", "1e9B", "8388608TiB", "0.5KiB", "10Mbit", "2MB/s", "1bit", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseBytes(s); err == nil && n < 0 {
			t.Fatalf("parseBytes(%q) = %d", s, n)
		}
		if n, err := parseRate(s); err == nil && n < 0 {
			t.Fatalf("parseRate(%q) = %d", s, n)
		}
	})
}
