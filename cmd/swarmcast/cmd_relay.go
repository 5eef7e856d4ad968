package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/relay"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newRelayCommand) }

func newRelayCommand() *cobra.Command {
	var coordinator, listen, advertise, region, upload, keyFile string
	var price float64
	var window, queue int
	var faultKind string
	var faultFrom uint64
	var faultDelay time.Duration
	var printID bool
	cmd := &cobra.Command{
		Use:   "relay --coordinator URL --upload-cap RATE --price POINTS_PER_GB",
		Short: "Run a live relay: receive live segments from a parent, verify them, forward them to children",
		Long: `Run a relay: a platform node in the live channels' fan-out trees. It registers
with the coordinator with its upload capacity and price, takes its places in the
trees from heartbeat answers, accepts each segment's push only from its assigned
parent, verifies the entry and every shard before keeping or forwarding them, and
serves the last --window segments to players on the shard route.

The coordinator takes only relays the operator allowed: run with --key FILE
--print-id to learn the relay's id, then swarmcast coordinator --relay-key ID
(or, at run time, swarmcast node-keys allow relay ID).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printID {
				return printNodeID(cmd, wire.RoleRelay, keyFile)
			}
			coordinators, err := parseCoordinatorURLs(coordinator)
			if err != nil {
				return err
			}
			if err := checkListenAddr("--listen", listen); err != nil {
				return err
			}
			if err := checkAdvertise(advertise); err != nil {
				return err
			}
			capBytes, err := parseRate(upload)
			if err != nil {
				return fmt.Errorf("--upload-cap: %w", err)
			}
			if capBytes <= 0 {
				return errors.New("--upload-cap must be more than 0, e.g. 100Mbit")
			}
			if price < 0 {
				return errors.New("--price must be 0 or more (points per GB uploaded)")
			}
			if window < 0 || queue < 0 {
				return errors.New("--window and --queue must be 0 (the default) or more")
			}
			kind, err := relay.ParseFaultKind(faultKind)
			if err != nil {
				return withFlagHint(err, "check --fault")
			}
			if faultDelay < 0 {
				return errors.New("--fault-delay must be 0 (two segment durations) or more, e.g. 3s")
			}
			if kind == relay.FaultNone && (cmd.Flags().Changed("fault-from") || faultDelay != 0) {
				return errors.New("--fault-from and --fault-delay need --fault stall|corrupt|slow")
			}
			id := identity.New()
			if keyFile != "" {
				if id, err = identity.LoadOrCreate(keyFile); err != nil {
					return withFlagHint(err, "check --key FILE")
				}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := relay.New(relay.Config{Coordinator: coordinators[0], Identity: id, Region: region,
				UploadCapBytes: capBytes, PricePerGB: price, WindowSegments: window, QueueSegments: queue,
				Fault:    relay.Fault{Kind: kind, From: faultFrom, Delay: faultDelay},
				Registry: httpserve.NewRegistry(), Log: log.With("role", "relay")})
			if err != nil {
				return err
			}
			srv, err := httpserve.Listen(ctx, listen, advertise, r.Handler(), log)
			if err != nil {
				return withFlagHint(err, "set --listen HOST:PORT")
			}
			r.SetAdvertise(srv.Advertise)
			fmt.Fprintf(cmd.OutOrStdout(), "relay %s serving at %s (bound %s)\n", r.ID(), srv.Advertise, srv.Addr())
			fmt.Fprintf(cmd.OutOrStdout(), "the coordinator takes this relay only if allowed: swarmcast coordinator --relay-key %s (or at run time: swarmcast node-keys allow relay %s)\n", r.ID(), r.ID())
			runErr := r.Run(ctx) // leaves the network when ctx ends
			srv.Close()
			if err := srv.Wait(); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&coordinator, "coordinator", "", "coordinator base URL, e.g. http://127.0.0.1:7000")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "address to bind, e.g. 127.0.0.1:7300, [::1]:7300, :7300 (port 0 picks one)")
	f.StringVar(&advertise, "advertise", "", "base URL parents and players reach this relay at (default: derived from --listen)")
	f.StringVar(&region, "region", "", "region name, used to prefer nearby nodes")
	f.StringVar(&upload, "upload-cap", "100Mbit", "upload bandwidth offered to the trees (e.g. 100Mbit, 20MB/s)")
	f.Float64Var(&price, "price", 0, "what this relay's upload costs the platform, points per GB")
	f.StringVar(&keyFile, "key", "", "node key file (created if missing), so a restarted relay keeps its identity; default: a fresh identity per run")
	f.BoolVar(&printID, "print-id", false, "print this relay's node id (the key the coordinator must allow with --relay-key; needs --key FILE) and exit")
	f.IntVar(&window, "window", 0, "live segments kept per chain for players (0: 30)")
	f.IntVar(&queue, "queue", 0, "segments queued per child before the oldest is dropped (0: 3)")
	f.StringVar(&faultKind, "fault", "", "fault injection (tests, demo --faults): stall (forward nothing), corrupt (forward altered shards) or slow (forward late); default: honest")
	f.Uint64Var(&faultFrom, "fault-from", 0, "first live segment (entry seq) the --fault applies to")
	f.DurationVar(&faultDelay, "fault-delay", 0, "--fault slow: how late each segment is forwarded (0: two segment durations)")
	return cmd
}
