package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/origin/worker"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newWorkerCommand) }

// A worker is its own process rather than a flag of the origin: it needs
// only ffmpeg and a key (no store), and the f+1 replicas of a chain are
// only worth their count when they run on machines (and owners) that fail
// independently of the origin that judges them. Its code is an origin
// subsystem (origin/worker) because it runs origin/live's recipe.
func newWorkerCommand() *cobra.Command {
	var listen, advertise, keyFile, allow, faultKind, coordinator, user, password string
	var slots int
	var faultFrom uint64
	var printID bool
	cmd := &cobra.Command{
		Use:   "worker --allow-origin NODE_ID --listen HOST:PORT [--coordinator URL --key FILE [--user NAME]]",
		Short: "Run a BTR worker: transcode live source segments for the origins it allows and sign the output",
		Long: `Run a BTR worker (docs/LIVE.md, "BTR"): an origin started with --btr-f F and
--btr-workers URL,... hands each live source segment to F+1 workers; each runs the
pinned ladder recipe with ffmpeg and signs the digest of what it produced. The
origin packages a segment only when every assigned worker signed the same digest;
a worker that signs a wrong one is excluded with a proof anyone can re-check,
one that does not answer in time is accused and excluded.

With --coordinator the worker registers there (the operator allows its key:
coordinator --worker-key ID) and origins find it without --btr-workers; with
--user it is bound to that account, which earns points for every segment it
agreed on (docs/LIVE.md, "BTR: workers, payment, metering").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printID {
				return printNodeID(cmd, wire.RoleWorker, keyFile)
			}
			if err := checkListenAddr("--listen", listen); err != nil {
				return err
			}
			if err := checkAdvertise(advertise); err != nil {
				return err
			}
			allowed := map[wire.NodeID]bool{}
			for _, id := range splitList(allow) {
				if err := wire.CheckNodeID(wire.NodeID(id)); err != nil {
					return fmt.Errorf("--allow-origin %q: %v (the origin's id: swarmcast origin --print-id)", id, err)
				}
				allowed[wire.NodeID(id)] = true
			}
			if len(allowed) == 0 {
				return errors.New("--allow-origin is required: the node ids of the origins that may hand this worker tasks (swarmcast origin --print-id)")
			}
			if slots < 1 || slots > 256 {
				return errors.New("--slots must be 1..256 (concurrent transcodes)")
			}
			if coordinator != "" && keyFile == "" {
				return errors.New("--coordinator needs --key FILE: the coordinator allows a worker by its key (coordinator --worker-key), so it must survive restarts")
			}
			if user != "" && coordinator == "" {
				return errors.New("--user binds the worker to an account on a coordinator: set --coordinator URL too")
			}
			if password == "" {
				password = os.Getenv("SWARMCAST_PASSWORD")
			}
			fault, err := worker.ParseFault(faultKind, faultFrom)
			if err != nil {
				return err
			}
			if faultKind == "" && cmd.Flags().Changed("fault-from") {
				return errors.New("--fault-from needs --fault commission|omission|timing|equivocation")
			}
			ffmpeg, err := exec.LookPath("ffmpeg")
			if err != nil {
				return errors.New("a worker needs ffmpeg on PATH (apt install ffmpeg) to run the ladder recipe")
			}
			id := identity.New()
			if keyFile != "" {
				if id, err = identity.LoadOrCreate(keyFile); err != nil {
					return withFlagHint(err, "check --key FILE")
				}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("role", "worker")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			signer := wire.NewNodeSigner(id.Key, nil)
			var cc *wire.CoordinatorClient
			srv := &worker.Server{Worker: &worker.Worker{Key: id.Key, FFmpeg: ffmpeg, Fault: fault}, Allowed: func(n wire.NodeID) bool { return allowed[n] },
				Slots: slots, Log: log, Client: wire.NewHTTPClient(), Registry: httpserve.NewRegistry()}
			if coordinator != "" {
				cc = wire.NewCoordinatorClient(strings.TrimRight(coordinator, "/"), wire.NewHTTPClient()).AsNode(signer)
				srv.Rebuttals = []worker.RebuttalPoster{cc}
			}
			if user != "" {
				session, err := login(ctx, cc.Base, user, password)
				if err != nil {
					return err
				}
				owner := wire.NewCoordinatorClient(cc.Base, wire.NewHTTPClient())
				owner.Token = session
				if err := owner.BindWorkerAs(ctx, signer); err != nil {
					return fmt.Errorf("bind this worker to account %s: %w", user, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "worker %s bound to account %s: agreed segments pay it\n", id.ID, user)
			}
			hs, err := httpserve.Listen(ctx, listen, advertise, srv.Handler(), log)
			if err != nil {
				return withFlagHint(err, "set --listen HOST:PORT")
			}
			if cc == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "worker %s serving at %s (bound %s); origins start with --btr-workers %s\n", id.ID, hs.Advertise, hs.Addr(), hs.Advertise)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "worker %s serving at %s (bound %s), registering with %s (allow it there: --worker-key %s)\n", id.ID, hs.Advertise, hs.Addr(), cc.Base, id.ID)
			}
			if fault.Kind != 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "FAULT INJECTION: this worker is faulty (%s): its origins' judges will exclude it\n", fault)
			}
			if cc == nil {
				<-ctx.Done()
				hs.Close()
				return hs.Wait()
			}
			// The session ends with ctx (it leaves the coordinator); then the server closes.
			runErr := srv.Session(cc, id.ID, hs.Advertise, log).Run(ctx)
			hs.Close()
			if err := hs.Wait(); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7400", "address to bind, e.g. 127.0.0.1:7400, [::1]:7400, :7400")
	f.StringVar(&advertise, "advertise", "", "base URL origins reach this worker at (default: derived from --listen)")
	f.StringVar(&allow, "allow-origin", "", "node ids of the origins that may hand this worker tasks, comma-separated")
	f.StringVar(&keyFile, "key", "", "node key file (created if missing): a worker's key is its identity in the chains' standby plans")
	f.IntVar(&slots, "slots", 2, "concurrent transcodes")
	f.StringVar(&faultKind, "fault", "", "fault injection (tests and demos): behave faultily from --fault-from on: commission (sign spoiled frames), omission (never answer), timing (answer after the deadline), equivocation (sign a different output for another party)")
	f.Uint64Var(&faultFrom, "fault-from", 0, "with --fault: the first segment number the worker misbehaves on")
	f.BoolVar(&printID, "print-id", false, "print this worker's node id (the key the coordinator allows with --worker-key; needs --key FILE) and exit")
	f.StringVar(&coordinator, "coordinator", "", "coordinator base URL to register with as a BTR worker (origins then find this worker there), e.g. http://127.0.0.1:7000")
	f.StringVar(&user, "user", "", "bind this worker to this account (it earns the points for agreed segments); needs --coordinator")
	f.StringVar(&password, "password", "", "the account's password (default $SWARMCAST_PASSWORD)")
	return cmd
}
