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
	"github.com/swarmcast/swarmcast/internal/impair"
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
	webOrigins                                  []string
	impair                                      string
	link                                        impair.Profile // parsed --impair
	procs                                       int            // --procs; applied only if procsGiven or no $GOMAXPROCS
}

// edgeConfig turns the flags into an edge.Config (without identity,
// network or logging parts), with every flag checked. It creates nothing:
// the cache directory and the node key are made only after it succeeds.
func (fl *edgeFlags) edgeConfig() (edge.Config, error) {
	var cfg edge.Config
	if fl.dir == "" {
		return cfg, errors.New("no cache directory given (set --dir DIR)")
	}
	if err := checkProcs(fl.procs); err != nil {
		return cfg, err
	}
	coordinators, err := parseCoordinatorURLs(fl.coordinator)
	if err != nil {
		return cfg, err
	}
	if err := checkCreatableDir("--dir", fl.dir); err != nil {
		return cfg, err
	}
	if err := checkListenAddr("--listen", fl.listen); err != nil {
		return cfg, err
	}
	if fl.playerListen != "" {
		if err := checkListenAddr("--player-listen", fl.playerListen); err != nil {
			return cfg, err
		}
	}
	if err := checkWebOrigins(fl.webOrigins); err != nil {
		return cfg, err
	}
	if err := checkAdvertise(fl.advertise); err != nil {
		return cfg, err
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
	if fl.link, err = parseImpair(fl.impair); err != nil {
		return cfg, err
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
	if fl.user != "" && fl.passwordOrEnv() == "" {
		return cfg, errors.New("--user needs --password (or $SWARMCAST_PASSWORD)")
	}
	if fl.user == "" && fl.password != "" {
		return cfg, errors.New("--password needs --user (the account to run this edge under)")
	}
	token := fl.token
	if token == "" {
		token = os.Getenv("SWARMCAST_EDGE_TOKEN")
	}
	return edge.Config{
		Dir: fl.dir, Coordinator: coordinators[0], Coordinators: coordinators, Region: fl.region,
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
			applyProcs(cmd.Flags().Changed("procs"), fl.procs, edgeDefaultProcs)
			// A cache directory this run creates is removed again if the
			// edge fails before it serves (a refused login, a port in use).
			created := &newPaths{}
			defer created.undoUnlessKept()
			created.note(fl.dir)
			if cfg.Identity, err = identity.LoadOrCreate(filepath.Join(fl.dir, "node.key")); err != nil {
				return withFlagHint(err, "check --dir DIR")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM) // cmd.Context: a test stops the edge by cancelling it
			defer stop()
			cfg.Log, cfg.Registry = log, httpserve.NewRegistry()
			session, err := fl.signIn(ctx, &cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if cfg.Token == "" {
				// Once, plainly: without a token settlement is refused, so
				// every byte this edge serves goes unpaid.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: this edge runs without an account: it will serve other viewers but earn no points, and its built-in player cannot unlock videos.\n"+
					"         To earn, sign up once (swarmcast account signup --coordinator %s --user NAME --password PASS)\n"+
					"         and run the edge with --user NAME --password PASS (or --token TOKEN).\n", cfg.Coordinator)
			}
			e, err := edge.New(cfg)
			if err != nil {
				return err
			}
			if fl.playerListen == "" {
				return runEdge(ctx, e, fl.listen, fl.advertise, fl.link, log, cmd, created)
			}
			// The built-in player: its gateway serves any HLS player on
			// 127.0.0.1, and what it watches is kept in this edge's cache.
			player, err := viewer.New(viewer.Config{
				Coordinator: cfg.Coordinator, Identity: cfg.Identity, Region: cfg.Region, Token: session,
				Log: log.With("part", "player"), OnSegment: e.Keep,
				// What it watches live puts the edge in that chain's trees.
				OnLiveServable: func(s viewer.LiveServable) { e.NoteLiveWatched(s.Chain) },
				Registry:       cfg.Registry, // its swarmcast_viewer_* series show on the edge's /metrics
				WebOrigins:     append(append([]string(nil), cfg.Coordinators...), fl.webOrigins...),
			})
			if err != nil {
				return err
			}
			defer player.Close()
			e.OnLivePush(player.LivePushLanded) // a live segment's fetch starts when its push lands here
			gw, err := httpserve.Listen(ctx, fl.playerListen, "", player.Handler(), log)
			if err != nil {
				return withFlagHint(fmt.Errorf("player gateway: %w", err), "set --player-listen HOST:PORT, or empty for no player")
			}
			defer gw.Close()
			announceGateway(player, gw.Advertise, cmd.ErrOrStderr())
			printPlayLines(ctx, cmd.OutOrStdout(), cfg.Coordinator, gw.Advertise, session != "")
			return runEdge(ctx, e, fl.listen, fl.advertise, fl.link, log, cmd, created)
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
	f.StringSliceVar(&fl.webOrigins, "web-origin", nil, webOriginUsage)
	f.StringVar(&fl.impair, "impair", "", impairFlagHelp)
	f.IntVar(&fl.procs, "procs", edgeDefaultProcs, procsUsage+". An edge is I/O-bound: more threads cost wakeups per shard")
	f.StringVar(&fl.fault, "byzantine", "honest", "misbehave when serving others, for testing: honest, flip-bits, truncate, wrong-index, slow-drip")
	return cmd
}

// signIn logs in as --user (if given), binds this edge to the account the
// first time (keeping the API token in --dir/edge.token, 0600) and returns
// the session token for the built-in player.
// Without --user it still picks up the token kept by an earlier bound run,
// so a restarted edge keeps earning.
func (fl *edgeFlags) signIn(ctx context.Context, cfg *edge.Config, out io.Writer) (string, error) {
	tokenFile := filepath.Join(fl.dir, "edge.token")
	if cfg.Token == "" {
		if b, err := secretfile.Read(tokenFile); err == nil {
			cfg.Token = strings.TrimSpace(string(b))
		}
	}
	if fl.user == "" {
		return "", nil
	}
	session, err := login(ctx, cfg.Coordinator, fl.user, fl.passwordOrEnv())
	if err != nil {
		return "", err
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

// passwordOrEnv is --password, else $SWARMCAST_PASSWORD.
func (fl *edgeFlags) passwordOrEnv() string {
	if fl.password != "" {
		return fl.password
	}
	return os.Getenv("SWARMCAST_PASSWORD")
}

// printPlayLines tells the user what to open in a player: the gateway's
// catalogue page (a web page) and, when the catalogue has a video, a
// master playlist URL an HLS player opens directly. A player without an
// account gets no key, so it gets no play: URL either.
func printPlayLines(ctx context.Context, out io.Writer, coordinator, gateway string, signedIn bool) {
	fmt.Fprintf(out, "catalogue: %s/   (web page listing every video with its playlist URL)\n", gateway)
	if !signedIn {
		fmt.Fprintln(out, "play: none: the built-in player needs an account to unlock videos (run the edge with --user NAME --password PASS)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	videos, err := wire.NewCoordinatorClient(coordinator, nil).Videos(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(out, "play: %s/videos/VIDEO-ID/master.m3u8   (could not list the catalogue: %v)\n", gateway, err)
	case len(videos) == 0:
		fmt.Fprintf(out, "play: %s/videos/VIDEO-ID/master.m3u8   (no video published yet: start an origin; then see the catalogue page)\n", gateway)
	default:
		url := fmt.Sprintf("%s/videos/%s/master.m3u8", gateway, videos[0].ID)
		fmt.Fprintf(out, "play: %s   (%q; open it with ffplay, vlc or mpv)\n", url, videos[0].Title)
	}
}

// runEdge serves the edge until ctx ends, then leaves the network.
func runEdge(ctx context.Context, e *edge.Edge, listen, advertise string, link impair.Profile, log *slog.Logger, cmd *cobra.Command, created *newPaths) error {
	srv, err := listenImpaired(ctx, listen, advertise, e.ServeHot, e.Handler(), log, link)
	if err != nil {
		return withFlagHint(err, "set --listen HOST:PORT")
	}
	created.keep()
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

// announceGateway has the coordinator list the player's gateway for its
// account, so the coordinator's video page plays through it. A gateway
// bound where a page cannot open it as http://127.0.0.1:PORT (say
// --player-listen 0.0.0.0:PORT) is not announced: pages use the fallback.
func announceGateway(player *viewer.Viewer, gateway string, stderr io.Writer) {
	if err := player.AnnounceGateway(gateway); err != nil {
		fmt.Fprintf(stderr, "note: web pages will not play through this gateway: %v\n", err)
	}
}
