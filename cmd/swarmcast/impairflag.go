package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/impair"
)

// impairFlagHelp documents --impair for every server that takes it.
const impairFlagHelp = "emulate a slow link on every connection this server accepts, each direction: latency=25ms,jitter=5ms,loss=0.5% (for emulations; default none)"

// parseImpair reads an --impair value: comma-separated latency=DURATION
// (one way, so a round trip gains twice it), jitter=DURATION and loss=P%
// (0–100, each MSS-sized packet's chance of one retransmission timeout).
// The empty string is a perfect link.
func parseImpair(spec string) (impair.Profile, error) {
	var p impair.Profile
	if strings.TrimSpace(spec) == "" {
		return p, nil
	}
	for _, part := range strings.Split(spec, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, fmt.Errorf("--impair %q: %q is not key=value; want e.g. latency=25ms,jitter=5ms,loss=0.5%%", spec, part)
		}
		switch key {
		case "latency", "jitter":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 || d > 10*time.Second {
				return p, fmt.Errorf("--impair %s=%q: want a duration from 0 to 10s, e.g. 25ms", key, val)
			}
			if key == "latency" {
				p.Latency = d
			} else {
				p.Jitter = d
			}
		case "loss":
			f, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
			if err != nil || !strings.HasSuffix(val, "%") || f < 0 || f > 100 {
				return p, fmt.Errorf("--impair loss=%q: want a percentage from 0%% to 100%%, e.g. 0.5%%", val)
			}
			p.Loss = f / 100
		default:
			return p, fmt.Errorf("--impair %q: unknown key %q (latency, jitter, loss)", spec, key)
		}
	}
	return p, nil
}

// listenImpaired serves h like httpserve.Listen, through an emulated link
// of profile p in both directions unless p is the perfect link.
func listenImpaired(ctx context.Context, listen, advertise string, hot httpserve.Hot, h http.Handler, log *slog.Logger, p impair.Profile) (*httpserve.Server, error) {
	if p == (impair.Profile{}) {
		return httpserve.ListenHot(ctx, listen, advertise, hot, h, log)
	}
	return httpserve.ListenHotWrapped(ctx, listen, advertise, hot, h, log, func(ln net.Listener) net.Listener {
		return &impair.Listener{Listener: ln, Out: p, In: p, Seed: uint64(time.Now().UnixNano())}
	})
}
