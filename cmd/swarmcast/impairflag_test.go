package main

import (
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/internal/impair"
)

func TestParseImpair(t *testing.T) {
	for _, c := range []struct {
		spec string
		want impair.Profile
		ok   bool
	}{
		{"", impair.Profile{}, true},
		{"latency=25ms,jitter=5ms,loss=0.5%", impair.Profile{Latency: 25 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.005}, true},
		{" loss=100% ", impair.Profile{Loss: 1}, true},
		{"loss=0.5", impair.Profile{}, false},     // a fraction without % is ambiguous
		{"loss=101%", impair.Profile{}, false},    // not a probability
		{"latency=-1ms", impair.Profile{}, false}, // no negative delay
		{"latency=1h", impair.Profile{}, false},   // beyond the 10 s bound
		{"bandwidth=10Mbit", impair.Profile{}, false},
		{"latency", impair.Profile{}, false},
	} {
		got, err := parseImpair(c.spec)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseImpair(%q) = %+v, %v; want %+v, ok=%v", c.spec, got, err, c.want, c.ok)
		}
	}
}
