package main

import (
	"bytes"
	"os"
	"path/filepath"
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
const aVideoID = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestFlagAndArgumentErrorsSayWhatToDo(t *testing.T) {
	tmp := t.TempDir()
	notADir := filepath.Join(tmp, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWARMCAST_PASSWORD", "")
	t.Setenv("SWARMCAST_TOKEN", "")
	t.Setenv("SWARMCAST_EDGE_TOKEN", "")
	edge := func(extra ...string) []string {
		return append([]string{"edge", "--dir", filepath.Join(tmp, "edge"), "--coordinator", "http://127.0.0.1:9"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want []string // substrings of the error, in order of appearance not required
	}{
		{"unknown command", []string{"nosuch"}, []string{`unknown command "nosuch" for "swarmcast"`, "swarmcast --help"}},
		{"misspelt command", []string{"plna"}, []string{"did you mean plan or play?"}},
		{"unknown plan algorithm", []string{"plan", "avrdo"}, []string{`unknown command "avrdo" for "swarmcast plan"`, "did you mean avardo?", "swarmcast plan --help"}},
		{"unknown bench", []string{"bench", "nosuch"}, []string{`unknown command "nosuch" for "swarmcast bench"`}},
		{"unknown account action", []string{"account", "delete"}, []string{`for "swarmcast account"`}},
		{"unknown flag", []string{"edge", "--bogus"}, []string{"unknown flag: --bogus", "see 'swarmcast edge --help'"}},
		{"stray argument", []string{"coordinator", "extra"}, []string{`unknown command "extra" for "swarmcast coordinator"`}},

		{"edge without coordinator", []string{"edge", "--dir", tmp}, []string{"--coordinator is required", "http://127.0.0.1:7000"}},
		{"edge without dir", []string{"edge", "--dir", "", "--coordinator", "http://127.0.0.1:9"}, []string{"no cache directory given", "set --dir DIR"}},
		{"edge disk unit", edge("--disk", "1.5XB"), []string{"--disk", `unknown unit "xb"`, "GB", "GiB"}},
		{"edge disk not a number", edge("--disk", "lots"), []string{"--disk", "want a number followed by a unit", "1.5GB"}},
		{"edge disk zero", edge("--disk", "0GB"), []string{"--disk must be more than 0"}},
		{"edge upload unit", edge("--upload", "10furlongs"), []string{"--upload", `unknown unit "furlongs"`, "Mbit"}},
		{"edge preset", edge("--preset", "0.3"), []string{"--preset", "want 0.2, 0.5 or 1"}},
		{"edge watched ttl", edge("--watched-ttl", "0s"), []string{"--watched-ttl must be positive"}},
		{"edge coordinator key", edge("--coordinator-key", "abc"), []string{"--coordinator-key", "64 hex digits"}},
		{"edge fault", edge("--byzantine", "sneaky"), []string{"--byzantine"}},
		{"edge user without password", edge("--user", "alice"), []string{"--user needs --password"}},

		{"origin without store", []string{"origin", "--store", "", "--coordinator", "http://127.0.0.1:9"}, []string{"no store directory given", "set --store DIR"}},
		{"origin store not ingested", []string{"origin", "--store", filepath.Join(tmp, "empty"), "--coordinator", "http://127.0.0.1:9"}, []string{"is not a store", "swarmcast ingest --store"}},
		{"origin without coordinator", []string{"origin", "--store", tmp}, []string{"--coordinator is required"}},
		{"origin cache size", []string{"origin", "--cache", "1.5XB"}, []string{"--cache", `unknown unit "xb"`}},

		{"coordinator db scheme", []string{"coordinator", "--db", "mysql://x", "--identity", filepath.Join(tmp, "c.key")}, []string{"unsupported dsn", "set --db to sqlite:PATH or postgres://"}},
		{"coordinator empty sqlite path", []string{"coordinator", "--db", "sqlite:", "--identity", filepath.Join(tmp, "c.key")}, []string{"empty SQLite path", "set --db"}},
		{"coordinator seed", []string{"coordinator", "--seed", "x"}, []string{`invalid argument "x" for "--seed"`, "swarmcast coordinator --help"}},

		{"ingest without input", []string{"ingest", "--store", tmp}, []string{"give exactly one video file or HLS directory (or --sample)"}},
		{"ingest store is a file", []string{"ingest", "--store", notADir, "video.mp4"}, []string{"open store", "check --store DIR"}},
		{"verify store is a file", []string{"verify", "--store", notADir, aVideoID}, []string{"check --store DIR"}},
		{"verify without id", []string{"verify"}, []string{"requires at least 1 arg"}},

		{"play without id", []string{"play"}, []string{"give exactly one video id", "64 hex digits"}},
		{"play bad id", []string{"play", "abc"}, []string{"want 64 hex characters"}},
		{"play without coordinator", []string{"play", aVideoID}, []string{"no coordinator", "--coordinator http://HOST:PORT"}},
		{"play gateway address", []string{"play", aVideoID, "--coordinator", "http://127.0.0.1:9", "--listen", "127.0.0.1:99999"}, []string{"listen on 127.0.0.1:99999", "set --listen"}},

		{"account without credentials", []string{"account", "signup", "--coordinator", "http://127.0.0.1:9"}, []string{"need --coordinator, --user and --password"}},

		{"demo sizes", []string{"demo", "--edges", "0"}, []string{"need --edges ≥ 1"}},
		{"demo churn", []string{"demo", "--churn", "2"}, []string{"--churn must be in [0,1]"}},

		{"avardo negative blocks", []string{"plan", "avardo", "--blocks", "-5"}, []string{"Blocks is -5, want ≥ 0", "set --blocks"}},
		{"avardo no blocks", []string{"plan", "avardo", "--blocks", "0"}, []string{"at least one block is needed"}},
		{"avardo not a number", []string{"plan", "avardo", "--blocks", "many"}, []string{`invalid argument "many" for "--blocks"`, "swarmcast plan avardo --help"}},
		{"avardo stream rate", []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "10", "--stream-gbps", "0"}, []string{"StreamGbps is 0", "set --stream-gbps"}},
		{"avardo utilisation", []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "10", "--utilisation", "1.5"}, []string{"want in (0, 1]", "set --utilisation"}},
		{"avardo too few servers", []string{"plan", "avardo", "--blocks", "100", "--slots", "10", "--servers", "5"}, []string{"storage constraint cannot be met"}},
		{"avardo missing trace", []string{"plan", "avardo", "--trace", filepath.Join(tmp, "none.csv")}, []string{"open trace"}},
		{"ravo clusters", []string{"plan", "ravo", "--clusters", "1,x"}, []string{`--clusters: "x" is not a positive integer`, "1,4,10"}},
		{"ravo solver", []string{"plan", "ravo", "--solver", "cplex"}, []string{`unknown --solver "cplex"`, "auto, gonum or coin"}},
		{"cocos delays", []string{"plan", "cocos", "--delays", "800,0"}, []string{`--delays: "0" is not a positive integer`}},
		{"cocos sweep channels", []string{"plan", "cocos", "--sweep-channels", "ten"}, []string{`--sweep-channels: "ten"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.args...)
			if err == nil {
				t.Fatalf("swarmcast %s succeeded; output:\n%s", strings.Join(tc.args, " "), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
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
		"1.5GB": 1_500_000_000, "512MiB": 512 << 20, "1000000": 1_000_000, " 2 kb ": 2000, "0": 0,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]int64{"10Mbit": 1_250_000, "800kbit": 100_000, "2MB/s": 2_000_000, "1MiB/s": 1 << 20} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GB", "-1GB", "1.5XB", "NaNGB", "1e30TB"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"10", "10MB", "2furlongs/s", "-1Mbit"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}
