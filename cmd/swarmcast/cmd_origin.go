package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/btr"
	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/internal/impair"
	"github.com/swarmcast/swarmcast/origin"
	"github.com/swarmcast/swarmcast/origin/live"
	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newOriginCommand) }

func newOriginCommand() *cobra.Command {
	var (
		storeDir, coordinator, listen, advertise, cache string
		impairSpec                                      string
		printID                                         bool
		liveOn                                          bool
		rtmpAddr                                        string
		liveResume                                      time.Duration
		btrF                                            int
		btrWorkers                                      string
		btrDeadline                                     time.Duration
		procs                                           int
	)
	cmd := &cobra.Command{
		Use:   "origin --store DIR --coordinator URL",
		Short: "Serve every shard of every segment of a store and publish its catalogue",
		Long: `Serve the videos of a publisher store (see 'swarmcast ingest') to viewers and
edges: any shard of any segment (parity computed on demand), whole segments with
Range support, and manifests. Registers with the coordinator and publishes the
catalogue, including content keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkProcs(procs); err != nil {
				return err
			}
			cacheBytes, err := parseBytes(cache)
			if err != nil {
				return fmt.Errorf("--cache: %w", err)
			}
			link, err := parseImpair(impairSpec)
			if err != nil {
				return err
			}
			if liveOn || rtmpAddr != "" {
				// A live-only origin starts from an empty store: its
				// broadcasts and recordings fill it.
				if err := makeLiveStore(storeDir); err != nil {
					return err
				}
			}
			if printID {
				// The coordinator takes only origins it allows
				// (--origin-key); this is how an operator learns the key.
				if err := checkStoreDir(storeDir); err != nil {
					return err
				}
				id, err := identity.LoadOrCreate(filepath.Join(storeDir, "node.key"))
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id.ID)
				return nil
			}
			coordinators, err := parseCoordinatorURLs(coordinator)
			if err != nil {
				return err
			}
			if err := checkStoreDir(storeDir); err != nil {
				return err
			}
			if err := checkListenAddr("--listen", listen); err != nil {
				return err
			}
			if err := checkAdvertise(advertise); err != nil {
				return err
			}
			if rtmpAddr != "" {
				if err := checkListenAddr("--rtmp", rtmpAddr); err != nil {
					return err
				}
				liveOn = true
			}
			if liveResume <= 0 {
				return fmt.Errorf("--live-resume %v: want a positive duration, e.g. 60s", liveResume)
			}
			applyProcs(cmd.Flags().Changed("procs"), procs, originDefaultProcs(liveOn))
			// The node key is the one file an origin adds to its store; it
			// is taken back if the origin fails before it serves.
			keyPath := filepath.Join(storeDir, "node.key")
			created := &newPaths{}
			defer created.undoUnlessKept()
			created.note(keyPath, keyPath+".tmp")
			st, err := content.OpenStore(storeDir)
			if err != nil {
				return withFlagHint(err, "check --store DIR")
			}
			id, err := identity.LoadOrCreate(keyPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			reg := httpserve.NewRegistry()
			var ingest *live.Ingest
			var btrReplicas *worker.Replicas
			onListen := func(string) {}
			if liveOn {
				// Ingest talks to the primary coordinator, signed as this origin.
				// It roots the relay trees: pushes are signed as this origin too.
				signer := wire.NewNodeSigner(id.Key, nil)
				cc := wire.NewCoordinatorClient(coordinators[0], wire.NewHTTPClient()).AsNode(signer)
				lc := live.Config{Store: st, Coordinator: cc, Origin: id.ID, Publisher: id.Key, Resume: liveResume, Signer: signer, Log: log, Registry: reg}
				if btrF > 0 {
					reps, err := startBTR(ctx, btrF, btrWorkers, btrDeadline, id.Key, signer, cc, reg, log)
					if err != nil {
						return err
					}
					defer reps.Close() // after ingest.Close: the ingest's workers call it
					lc.Replicas = reps
					btrReplicas = reps
				}
				ingest, err = live.New(lc)
				if err != nil {
					return err
				}
				defer ingest.Close()
			}
			cfg := origin.Config{
				Store: st, Identity: id, Coordinator: coordinators[0], Coordinators: coordinators, CacheBytes: cacheBytes,
				Log: log, Registry: reg,
			}
			if ingest != nil {
				cfg.Live = ingest
			}
			if btrReplicas != nil {
				cfg.BTR = btrReplicas
				onListen = btrReplicas.SetForward
			}
			if rtmpAddr != "" {
				ln, err := net.Listen("tcp", rtmpAddr)
				if err != nil {
					return withFlagHint(err, "set --rtmp HOST:PORT")
				}
				cfg.RTMPPort = ln.Addr().(*net.TCPAddr).Port
				rtmpDone := make(chan error, 1)
				rctx, stopRTMP := context.WithCancel(ctx)
				go func() { rtmpDone <- ingest.ServeRTMP(rctx, ln) }()
				defer func() { stopRTMP(); <-rtmpDone }()
				fmt.Fprintf(cmd.OutOrStdout(), "live: RTMP ingest on %s: rtmp://HOST:%d/live/STREAM_KEY\n", ln.Addr(), cfg.RTMPPort)
			}
			o, err := origin.New(cfg)
			if err != nil {
				return err
			}
			if liveOn {
				fmt.Fprintf(cmd.OutOrStdout(), "live: HLS push ingest at <this origin>%s (ffmpeg -f hls -method PUT .../live/STREAM_KEY/index.m3u8)\n", "/live/STREAM_KEY/index.m3u8")
			}
			return runOrigin(ctx, o, listen, advertise, link, log, cmd, created, onListen)
		},
	}
	f := cmd.Flags()
	f.StringVar(&storeDir, "store", "swarmcast-store", "publisher store directory (from swarmcast ingest)")
	f.StringVar(&coordinator, "coordinator", "", "coordinator base URL, e.g. http://127.0.0.1:7000; with several coordinators on one database, all of them comma-separated")
	f.StringVar(&listen, "listen", "127.0.0.1:7100", "address to bind, e.g. 127.0.0.1:7100, [::1]:7100, :7100")
	f.StringVar(&advertise, "advertise", "", "base URL others reach this origin at (default: derived from --listen); set it behind NAT or in the cloud")
	f.BoolVar(&printID, "print-id", false, "print this origin's node id (the key the coordinator must allow with --origin-key) and exit")
	f.StringVar(&impairSpec, "impair", "", impairFlagHelp)
	f.StringVar(&cache, "cache", "256MiB", "memory bound of the cache of encoded segments (e.g. 64MiB, 1GB)")
	f.IntVar(&procs, "procs", originDefaultProcs(false), procsUsage+". Default one per two cores for serving a store (I/O-bound: more threads cost wakeups per shard; 0 for one per core), the runtime's default (0) with --live or --rtmp")
	f.BoolVar(&liveOn, "live", false, "take live broadcasts: HLS push on this origin's HTTP address (PUT /live/STREAM_KEY/...); needs ffmpeg")
	f.StringVar(&rtmpAddr, "rtmp", "", "also take RTMP publishers on this address, e.g. 127.0.0.1:1935 (implies --live)")
	f.DurationVar(&liveResume, "live-resume", live.DefaultResume, "how long a dropped live publisher may take to return and continue the same broadcast before it is sealed into a recording")
	f.IntVar(&btrF, "btr-f", 0, "BTR: tolerate F faulty transcode workers by running each live segment's ladder on F+1 of --btr-workers (0: transcode locally)")
	f.StringVar(&btrWorkers, "btr-workers", "", "BTR workers' base URLs (swarmcast worker), comma-separated: the first F+1 are the active replicas, the rest spares in order (default: the workers registered with the coordinator, least loaded first)")
	f.DurationVar(&btrDeadline, "btr-deadline", btr.DefaultParams().ReplicaDeadline, "BTR: the longest a correct worker takes to transcode one segment (D; also the judge's re-execution X); set from the measured transcode time")
	return cmd
}

// runOrigin serves the origin until ctx ends.
func runOrigin(ctx context.Context, o *origin.Origin, listen, advertise string, link impair.Profile, log *slog.Logger, cmd *cobra.Command, created *newPaths, onListen func(advertise string)) error {
	srv, err := listenImpaired(ctx, listen, advertise, o.ServeHot, o.Handler(), log, link)
	if err != nil {
		return withFlagHint(err, "set --listen HOST:PORT")
	}
	created.keep()
	o.SetAdvertise(srv.Advertise)
	onListen(srv.Advertise)
	fmt.Fprintf(cmd.OutOrStdout(), "origin %s serving at %s (bound %s)\n", o.ID(), srv.Advertise, srv.Addr())
	fmt.Fprintf(cmd.OutOrStdout(), "the coordinator takes this origin only if allowed: swarmcast coordinator --origin-key %s (or at run time: swarmcast node-keys allow origin %s)\n", o.ID(), o.ID())
	runErr := o.Run(ctx)
	srv.Close()
	if err := srv.Wait(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// startBTR finds the workers and starts the origin's judges (the origin's
// node key signs tasks, accusations, exclusions and agreements). Without
// --btr-workers each new chain takes the workers registered with the
// coordinator (least loaded first); --btr-workers overrides that.
func startBTR(ctx context.Context, f int, workers string, deadline time.Duration, key ed25519.PrivateKey, signer *wire.NodeSigner,
	cc *wire.CoordinatorClient, reg prometheus.Registerer, log *slog.Logger) (*worker.Replicas, error) {
	urls := splitList(workers)
	if len(urls) > 0 && len(urls) < f+1 {
		return nil, fmt.Errorf("--btr-f %d needs at least %d --btr-workers, have %d (start them with swarmcast worker, or leave --btr-workers out to use the workers registered with the coordinator)", f, f+1, len(urls))
	}
	if deadline <= 0 {
		return nil, fmt.Errorf("--btr-deadline %v: want a positive duration, e.g. 600ms", deadline)
	}
	client := wire.NewHTTPClient()
	var ws []worker.RemoteWorker
	var discover func(context.Context) ([]worker.RemoteWorker, error)
	if len(urls) > 0 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if ws, err = worker.Discover(dctx, client, urls); err != nil {
			return nil, withFlagHint(err, "check --btr-workers")
		}
	} else {
		discover = worker.DiscoverRegistered(cc)
	}
	params := btr.DefaultParams()
	params.Segment = content.DefaultLiveSegment
	params.ReplicaDeadline, params.Reexec = deadline, deadline
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errors.New("a BTR judge needs ffmpeg on PATH to re-execute disputed segments")
	}
	reps, err := worker.NewReplicas(worker.ReplicasConfig{Workers: ws, Discover: discover, F: f, Params: params, Signer: signer, Judge: key, FFmpeg: ffmpeg,
		Client: client, Log: log.With("subsystem", "btr"), ChannelLog: cc, Payments: cc, Metrics: worker.NewMetrics(reg)})
	if err != nil {
		return nil, err
	}
	log.Info("btr: live segments replicated", "f", f, "workers", len(ws), "registered_workers", discover != nil, "recovery_bound", params.Bound())
	return reps, nil
}

// makeLiveStore creates an empty store at dir for a live origin, unless
// there is one.
func makeLiveStore(dir string) error {
	if dir == "" || checkStoreDir(dir) == nil {
		return nil
	}
	if _, err := content.OpenStore(dir); err != nil {
		return withFlagHint(err, "check --store DIR")
	}
	if err := os.MkdirAll(filepath.Join(dir, "videos"), 0o755); err != nil {
		return fmt.Errorf("--store %s: %w", dir, err)
	}
	return nil
}
