package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/edge"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/secretfile"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newEdgeCommand) }

// edgeFlags are the edge subcommand's options, kept in one struct so the
// built-in player/gateway can add its own flags and read these.
type edgeFlags struct {
	dir, coordinator, listen, advertise, region string
	disk, upload, preset, fault                 string
	watchedTTL                                  time.Duration
	token, coordinatorKey                       string
	settleInterval                              time.Duration
	user, password, playerListen                string
}

// edgeConfig turns the flags into an edge.Config (without network or
// logging parts), with every size and rate checked.
func (fl *edgeFlags) edgeConfig() (edge.Config, error) {
	var cfg edge.Config
	if fl.dir == "" {
		// Checked before the identity below would land in the working directory.
		return cfg, errors.New("no cache directory given (set --dir DIR)")
	}
	coordinators := splitList(fl.coordinator)
	if len(coordinators) == 0 {
		return cfg, errors.New("--coordinator is required (the coordinator's base URL, e.g. http://127.0.0.1:7000)")
	}
	disk, err := parseBytes(fl.disk)
	if err != nil {
		return cfg, fmt.Errorf("--disk: %w", err)
	}
	upload, err := parseRate(fl.upload)
	if err != nil {
		return cfg, fmt.Errorf("--upload: %w", err)
	}
	scale := 1.0
	if fl.preset != "" {
		switch fl.preset {
		case "0.2", "0.5", "1":
			scale, _ = strconv.ParseFloat(fl.preset, 64)
		default:
			return cfg, fmt.Errorf("--preset %q: want 0.2, 0.5 or 1 (a fraction of --disk and --upload)", fl.preset)
		}
	}
	disk, upload = int64(float64(disk)*scale), int64(float64(upload)*scale)
	if disk <= 0 {
		return cfg, errors.New("--disk must be more than 0")
	}
	if upload <= 0 {
		return cfg, errors.New("--upload must be more than 0")
	}
	if fl.watchedTTL <= 0 {
		return cfg, errors.New("--watched-ttl must be positive, e.g. 168h")
	}
	fault, err := edge.ParseFault(fl.fault)
	if err != nil {
		return cfg, fmt.Errorf("--byzantine: %w", err)
	}
	var coordKeys []ed25519.PublicKey
	for _, k := range splitList(fl.coordinatorKey) {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return cfg, fmt.Errorf("--coordinator-key: want %d hex digits per key (a coordinator's ed25519 public key)", 2*ed25519.PublicKeySize)
		}
		coordKeys = append(coordKeys, b)
	}
	var coordKey ed25519.PublicKey
	if len(coordKeys) > 0 {
		coordKey, coordKeys = coordKeys[0], coordKeys[1:]
	}
	if fl.settleInterval <= 0 {
		return cfg, errors.New("--settle-interval must be positive, e.g. 30s")
	}
	token := fl.token
	if token == "" {
		token = os.Getenv("SWARMCAST_EDGE_TOKEN")
	}
	id, err := identity.LoadOrCreate(filepath.Join(fl.dir, "node.key"))
	if err != nil {
		return cfg, err
	}
	return edge.Config{
		Dir: fl.dir, Identity: id, Coordinator: coordinators[0], Coordinators: coordinators, Region: fl.region,
		DiskCapBytes: disk, UploadCapBytes: upload, WatchedTTL: fl.watchedTTL, Fault: fault,
		Token: token, CoordinatorKey: coordKey, CoordinatorKeys: coordKeys, SettleInterval: fl.settleInterval,
	}, nil
}

func newEdgeCommand() *cobra.Command {
	var fl edgeFlags
	cmd := &cobra.Command{
		Use:   "edge --dir DIR --coordinator URL",
		Short: "Run a cache node: store shards within a disk cap and upload them within a bandwidth cap",
		Long: `Run an edge: a cache that keeps coded shards of the catalogue on disk (within
--disk), serves them to other viewers (within --upload), prefetches what the
coordinator assigns and keeps what its own player watched. Its cache and
identity survive restarts in --dir; every stored shard is re-verified on start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := fl.edgeConfig()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM) // cmd.Context: a test stops the edge by cancelling it
			defer stop()
			cfg.Log, cfg.Registry = log, httpserve.NewRegistry()
			session, err := fl.signIn(ctx, &cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			e, err := edge.New(cfg)
			if err != nil {
				return err
			}
			if fl.playerListen == "" {
				return runEdge(ctx, e, fl.listen, fl.advertise, log, cmd)
			}
			// The built-in player: its gateway serves any HLS player on
			// 127.0.0.1, and what it watches is kept in this edge's cache.
			player, err := viewer.New(viewer.Config{
				Coordinator: cfg.Coordinator, Identity: cfg.Identity, Region: cfg.Region, Token: session,
				Log: log.With("part", "player"), OnSegment: e.Keep,
				Registry: cfg.Registry, // its swarmcast_viewer_* series show on the edge's /metrics
			})
			if err != nil {
				return err
			}
			defer player.Close()
			gw, err := httpserve.Listen(ctx, fl.playerListen, "", player.Handler(), log)
			if err != nil {
				return withFlagHint(fmt.Errorf("player gateway: %w", err), "set --player-listen HOST:PORT, or empty for no player")
			}
			defer gw.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "play: %s/  (catalogue; open a video's master.m3u8 with ffplay, vlc or mpv)\n", gw.Advertise)
			return runEdge(ctx, e, fl.listen, fl.advertise, log, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.dir, "dir", "swarmcast-edge", "cache directory (shards, manifests, node identity); survives restarts")
	f.StringVar(&fl.coordinator, "coordinator", "", "coordinator base URL, e.g. http://127.0.0.1:7000; with several coordinators on one database, all of them comma-separated, the primary (placement, settlement) first")
	f.StringVar(&fl.listen, "listen", "127.0.0.1:0", "address to bind, e.g. 127.0.0.1:7200, [::1]:7200, :7200 (port 0 picks one)")
	f.StringVar(&fl.advertise, "advertise", "", "base URL others reach this edge at (default: derived from --listen); set it behind NAT or in the cloud")
	f.StringVar(&fl.region, "region", "", "region name, used to prefer nearby sources")
	f.StringVar(&fl.disk, "disk", "1.5GB", "disk space given to the cache (e.g. 500MB, 1.5GB, 2GiB)")
	f.StringVar(&fl.upload, "upload", "10Mbit", "upload bandwidth given to other viewers (e.g. 10Mbit, 2MB/s)")
	f.StringVar(&fl.preset, "preset", "", "scale --disk and --upload by 0.2, 0.5 or 1")
	f.DurationVar(&fl.watchedTTL, "watched-ttl", edge.DefaultWatchedTTL, "how long shards of what this node's player watched are kept")
	f.StringVar(&fl.token, "token", "", "the edge's API token from binding it to an account (POST "+wire.PathBindEdge+"); settlement needs it (default $SWARMCAST_EDGE_TOKEN)")
	f.StringVar(&fl.coordinatorKey, "coordinator-key", "", "extra ed25519 public keys (hex, comma-separated) to accept viewers' order limits signed with; optional: the edge learns each coordinator's key when it registers")
	f.DurationVar(&fl.settleInterval, "settle-interval", edge.DefaultSettleInterval, "how often orders whose limits expired are settled with the coordinator (all are settled on shutdown)")
	f.StringVar(&fl.user, "user", "", "account to run this edge under: logs in, binds the edge to it once (the API token is kept in --dir) and gives the built-in player the account's entitlements")
	f.StringVar(&fl.password, "password", "", "the account's password (default $SWARMCAST_PASSWORD)")
	f.StringVar(&fl.playerListen, "player-listen", "127.0.0.1:0", "address of the built-in player's HLS gateway (empty: no player)")
	f.StringVar(&fl.fault, "byzantine", "honest", "misbehave when serving others, for testing: honest, flip-bits, truncate, wrong-index, slow-drip")
	return cmd
}

// signIn logs in as --user (if given), binds this edge to the account the
// first time (keeping the API token in --dir/edge.token, 0600) and returns
// the session token for the built-in player.
func (fl *edgeFlags) signIn(ctx context.Context, cfg *edge.Config, out io.Writer) (string, error) {
	if fl.user == "" {
		return "", nil
	}
	password := fl.password
	if password == "" {
		password = os.Getenv("SWARMCAST_PASSWORD")
	}
	if password == "" {
		return "", errors.New("--user needs --password (or $SWARMCAST_PASSWORD)")
	}
	session, err := login(ctx, cfg.Coordinator, fl.user, password)
	if err != nil {
		return "", err
	}
	tokenFile := filepath.Join(fl.dir, "edge.token")
	if cfg.Token == "" {
		if b, err := secretfile.Read(tokenFile); err == nil {
			cfg.Token = strings.TrimSpace(string(b))
		}
	}
	if cfg.Token == "" {
		cc := wire.NewCoordinatorClient(cfg.Coordinator, nil)
		cc.Token = session
		bound, err := cc.BindEdge(ctx, wire.NewNodeSigner(cfg.Identity.Key, nil))
		if err != nil {
			return "", fmt.Errorf("bind this edge to account %s: %w", fl.user, err)
		}
		if err := secretfile.Write(tokenFile, []byte(bound.APIToken+"\n")); err != nil {
			return "", err
		}
		cfg.Token = bound.APIToken
		fmt.Fprintf(out, "edge %s bound to account %s (API token kept in %s)\n", cfg.Identity.ID, fl.user, tokenFile)
	}
	return session, nil
}

// runEdge serves the edge until ctx ends, then leaves the network.
func runEdge(ctx context.Context, e *edge.Edge, listen, advertise string, log *slog.Logger, cmd *cobra.Command) error {
	srv, err := httpserve.Listen(ctx, listen, advertise, e.Handler(), log)
	if err != nil {
		return withFlagHint(err, "set --listen HOST:PORT")
	}
	e.SetAdvertise(srv.Advertise)
	shards, bytes := e.Stored()
	fmt.Fprintf(cmd.OutOrStdout(), "edge %s serving at %s (bound %s), %d shards (%d bytes) cached\n", e.ID(), srv.Advertise, srv.Addr(), shards, bytes)
	runErr := e.Run(ctx) // returns after leaving gracefully
	srv.Close()
	if err := srv.Wait(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
