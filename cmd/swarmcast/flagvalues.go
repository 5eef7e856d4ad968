package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
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

// byteUnits are the suffixes --disk, --cache and friends accept.
var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// bitRateUnits are the suffixes --upload accepts, in bits per second.
var bitRateUnits = map[string]float64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
	"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9,
}

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

// splitQuantity splits "1.5GB" into 1.5 and "gb".
func splitQuantity(s string) (float64, string, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || r == '/' })
	if i < 0 {
		i = len(s)
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, "", fmt.Errorf("%q: want a number followed by a unit", s)
	}
	if v < 0 {
		return 0, "", fmt.Errorf("%q: must not be negative", s)
	}
	return v, unit, nil
}

// parseBytes reads a size such as "1.5GB", "512MiB" or "1000000".
func parseBytes(s string) (int64, error) {
	v, unit, err := splitQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("size %w (e.g. 1.5GB, 512MiB)", err)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
	}
	if v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v * mult), nil
}

// parseRate reads an upload rate such as "10Mbit", "800kbit", "2MB/s" and
// returns bytes per second.
func parseRate(s string) (int64, error) {
	v, unit, err := splitQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("rate %w (e.g. 10Mbit, 2MB/s)", err)
	}
	var bytesPerSec float64
	if mult, ok := bitRateUnits[unit]; ok {
		bytesPerSec = v * mult / 8
	} else if mult, ok := byteUnits[strings.TrimSuffix(unit, "/s")]; ok && strings.HasSuffix(unit, "/s") {
		bytesPerSec = v * mult
	} else {
		return 0, fmt.Errorf("rate %q: unknown unit %q (use bit, kbit, Mbit, Gbit for bits per second, or B/s, KB/s, MB/s, MiB/s)", s, unit)
	}
	if bytesPerSec >= math.MaxInt64 {
		return 0, fmt.Errorf("rate %q is too large", s)
	}
	return int64(bytesPerSec), nil
}
