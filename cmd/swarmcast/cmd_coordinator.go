package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/internal/httpserve"
)

func init() { subcommands = append(subcommands, newCoordinatorCommand) }

func newCoordinatorCommand() *cobra.Command {
	var (
		listen, advertise string
		heartbeat         time.Duration
		placement         time.Duration
		halfLife          time.Duration
		seed              int64
	)
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: node registry, catalogue, source lookup and shard placement",
		Long: `Run the coordinator of a Swarmcast network. Origins register and publish their
catalogue here; edges register, heartbeat their inventory and receive placement
directives; players look up sources. Runs until interrupted (SIGINT/SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			c, err := coordinator.New(coordinator.Config{
				HeartbeatInterval: heartbeat,
				PlacementInterval: placement,
				DemandHalfLife:    halfLife,
				Seed:              seed,
				Log:               log,
			})
			if err != nil {
				return err
			}
			srv, err := httpserve.Listen(ctx, listen, advertise, c.Handler(), log)
			if err != nil {
				return err
			}
			log.Info("coordinator listening", "url", srv.Advertise, "bind", srv.Addr())
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return c.Run(gctx) })
			g.Go(func() error {
				err := srv.Wait()
				stop() // the server stopped on its own: end Run too
				return err
			})
			err = g.Wait()
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			log.Info("coordinator stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7000", "address to bind (host:port)")
	cmd.Flags().StringVar(&advertise, "advertise", "", "base URL nodes and players use to reach this coordinator (default: derived from --listen)")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat", 2*time.Second, "heartbeat interval told to nodes; an edge silent for 3 intervals leaves lookups")
	cmd.Flags().DurationVar(&placement, "placement-interval", 2*time.Second, "how often placement recomputes directives")
	cmd.Flags().DurationVar(&halfLife, "demand-half-life", 60*time.Second, "half-life of per-segment demand")
	cmd.Flags().Int64Var(&seed, "seed", 0, "seed for placement and ranking tie-breaks (0: random)")
	return cmd
}
