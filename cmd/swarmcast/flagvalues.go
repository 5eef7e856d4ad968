package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/swarmcast/swarmcast/wire"
)

// Flag values shared by several subcommands: lists, sizes, rates, and the
// hint that names the flag when a library error is about its value.

// withFlagHint adds what to set to a library error, which by design never
// names our flags; hint is e.g. "set --store DIR". nil stays nil.
func withFlagHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// byteUnits are the suffixes --disk, --cache and friends accept, in bytes.
// A unit is required: a bare number is refused rather than read as bytes,
// because "--disk 1.5" almost always meant gigabytes.
var byteUnits = map[string]int64{
	"b":  1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// bitRateUnits are the suffixes --upload accepts, in bits per second.
var bitRateUnits = map[string]int64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
	"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9,
}

// The accepted forms, named in every size or rate error.
const (
	sizeForms = "a number and a unit: B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. 1.5GB, 512MiB, 1000000B"
	rateForms = "a number and a unit: bit, kbit, Mbit, Gbit (bits per second) or B/s, KB/s, MB/s, MiB/s, e.g. 10Mbit, 2MB/s"
)

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// splitQuantity splits "1.5GB" into the exact decimal 3/2 and "gb". The
// number is read as an exact rational, so "1.1GB" is exactly 1,100,000,000
// bytes and a fraction of a byte can be told apart from float rounding.
func splitQuantity(s string) (*big.Rat, string, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || r == '/' })
	if i < 0 {
		i = len(s)
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	// Plain decimals only: big.Rat would also take "1/2" and "1e9".
	if num == "" || strings.Trim(num, "0123456789.") != "" || strings.Count(num, ".") > 1 || num == "." {
		if strings.HasPrefix(num, "-") {
			return nil, "", fmt.Errorf("%q: must not be negative", s)
		}
		return nil, "", fmt.Errorf("%q: want a number followed by a unit", s)
	}
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, "", fmt.Errorf("%q: want a number followed by a unit", s)
	}
	return v, unit, nil
}

// wholeNumber returns v·mult if it is a whole number that fits an int64.
func wholeNumber(v *big.Rat, mult int64) (int64, bool, error) {
	x := new(big.Rat).Mul(v, new(big.Rat).SetInt64(mult))
	if !x.IsInt() {
		return 0, false, nil
	}
	if !x.Num().IsInt64() {
		return 0, true, errors.New("too large")
	}
	return x.Num().Int64(), true, nil
}

// parseBytes reads a size such as "1.5GB", "512MiB" or "1000000B" and
// refuses a bare number ("1.5") and a fraction of a byte ("1.5B").
func parseBytes(s string) (int64, error) {
	v, unit, err := splitQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("size %w; want %s", err, sizeForms)
	}
	if unit == "" {
		return 0, fmt.Errorf("size %q has no unit; want %s", s, sizeForms)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q; want %s", s, unit, sizeForms)
	}
	n, whole, err := wholeNumber(v, mult)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if !whole {
		return 0, fmt.Errorf("size %q is not a whole number of bytes; want %s", s, sizeForms)
	}
	return n, nil
}

// parseRate reads an upload rate such as "10Mbit", "800kbit", "2MB/s" and
// returns bytes per second; it refuses a rate that is not a whole number
// of bytes per second ("1bit").
func parseRate(s string) (int64, error) {
	v, unit, err := splitQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("rate %w; want %s", err, rateForms)
	}
	var n int64
	whole := false
	if mult, ok := bitRateUnits[unit]; ok {
		n, whole, err = wholeNumber(new(big.Rat).Quo(v, big.NewRat(8, 1)), mult)
	} else if mult, ok := byteUnits[strings.TrimSuffix(unit, "/s")]; ok && strings.HasSuffix(unit, "/s") {
		n, whole, err = wholeNumber(v, mult)
	} else {
		if unit == "" {
			return 0, fmt.Errorf("rate %q has no unit; want %s", s, rateForms)
		}
		return 0, fmt.Errorf("rate %q: unknown unit %q; want %s", s, unit, rateForms)
	}
	if err != nil {
		return 0, fmt.Errorf("rate %q is too large", s)
	}
	if !whole {
		return 0, fmt.Errorf("rate %q is not a whole number of bytes per second; want %s", s, rateForms)
	}
	return n, nil
}

// coordinatorExample is the hint every --coordinator error ends with.
const coordinatorExample = "http://127.0.0.1:7000"

// parseCoordinatorURLs checks a --coordinator value: one or more
// comma-separated base URLs, each http(s)://HOST[:PORT][/PATH], and returns
// them without trailing slashes (routes are appended to them).
func parseCoordinatorURLs(value string) ([]string, error) {
	list := splitList(value)
	if len(list) == 0 {
		return nil, fmt.Errorf("--coordinator is required (the coordinator's base URL, e.g. %s)", coordinatorExample)
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		u, err := checkBaseURL(s)
		if err != nil {
			return nil, fmt.Errorf("--coordinator %w (the coordinator's base URL, e.g. %s)", err, coordinatorExample)
		}
		out = append(out, u)
	}
	return out, nil
}

// checkBaseURL accepts http(s)://HOST[:PORT][/PATH] and returns it without
// a trailing slash; its errors start with the value, for a flag name to
// precede.
func checkBaseURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		return "", fmt.Errorf("%q has no scheme: did you mean http://%s?", s, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v;", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme %q, want http or https", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q names no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %q, want 1 to 65535", s, p)
		}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a base URL has no user, query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// checkListenAddr checks a HOST:PORT to bind (port 0 picks a free one).
func checkListenAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want HOST:PORT, e.g. 127.0.0.1:7000, [::1]:7000 or :7000", flag, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s %q: port %q, want 0 to 65535 (0 picks a free port)", flag, addr, port)
	}
	if strings.Contains(host, "/") {
		return fmt.Errorf("%s %q: want HOST:PORT, not a URL", flag, addr)
	}
	return nil
}

// checkLoopbackListenAddr checks an optional HOST:PORT that must bind a
// loopback address (a debugging listener nobody else may reach).
func checkLoopbackListenAddr(flag, addr string) error {
	if addr == "" {
		return nil
	}
	if err := checkListenAddr(flag, addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: want a loopback address such as 127.0.0.1:6060 or [::1]:6060 (profiles are for this machine only)", flag, addr)
	}
	return nil
}

// checkAdvertise checks an optional --advertise base URL.
func checkAdvertise(value string) error {
	if value == "" {
		return nil
	}
	if _, err := checkBaseURL(value); err != nil {
		return fmt.Errorf("--advertise %w (the base URL others reach this server at, e.g. http://203.0.113.7:7200)", err)
	}
	return nil
}

// checkCreatableFile checks that a command can create (or reuse) the file
// at path: it is not a directory and its directory already exists. A
// missing directory is an error rather than created, because it is usually
// a typo and creating it would leave a stray tree behind.
func checkCreatableFile(flag, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s %s is a directory; name a file in it, e.g. %s", flag, path, filepath.Join(path, "swarmcast.db"))
	}
	return checkParentDir(flag, path)
}

// checkCreatableDir checks that a command can create (or reuse) the
// directory at path: it is a directory if it exists, and its parent exists.
func checkCreatableDir(flag, path string) error {
	if path == "" {
		return fmt.Errorf("%s is empty; name a directory, e.g. %s ./swarmcast-data", flag, flag)
	}
	if fi, err := os.Stat(path); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s %s is a file, not a directory; choose another path", flag, path)
		}
		return nil
	}
	return checkParentDir(flag, path)
}

func checkParentDir(flag, path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: directory %s does not exist; create it first (mkdir -p %s) or choose a path in an existing directory", flag, path, dir, dir)
	case err != nil:
		return fmt.Errorf("%s %s: %v", flag, path, err)
	case !fi.IsDir():
		return fmt.Errorf("%s %s: %s is a file, not a directory", flag, path, dir)
	}
	return nil
}

// checkStoreDir checks that dir is a publisher store made by swarmcast
// ingest, without creating anything.
func checkStoreDir(dir string) error {
	if dir == "" {
		return errors.New("no store directory given (set --store DIR, a store made by swarmcast ingest)")
	}
	if fi, err := os.Stat(filepath.Join(dir, "videos")); err != nil || !fi.IsDir() {
		return fmt.Errorf("--store %s is not a store: ingest a video into it first (swarmcast ingest --store %s ...)", dir, dir)
	}
	return nil
}

// webOriginUsage documents --web-origin, shared by play and edge.
const webOriginUsage = "origin of a web page allowed to play through the player's gateway (CORS), besides the --coordinator URLs' origins: the coordinator's public URL when it is behind a proxy; repeatable or comma-separated"

// checkWebOrigins checks every --web-origin value is an http(s) site URL.
func checkWebOrigins(origins []string) error {
	for _, o := range origins {
		if _, err := wire.WebOrigin(o); err != nil {
			return fmt.Errorf("--web-origin: %w", err)
		}
	}
	return nil
}
