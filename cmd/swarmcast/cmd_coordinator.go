package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/swarmcast/swarmcast/coordinator"
	"github.com/swarmcast/swarmcast/coordinator/accounting"
	"github.com/swarmcast/swarmcast/coordinator/coordinatordb"
	"github.com/swarmcast/swarmcast/coordinator/live"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newCoordinatorCommand) }

func newCoordinatorCommand() *cobra.Command {
	var (
		listen, advertise string
		heartbeat         time.Duration
		placement         time.Duration
		halfLife          time.Duration
		seed              int64
		dsn, identityPath string
		judgeKeyPath      string
		admin             string
		defaultPrice      int64
		pointsPerMB       int64
		auditInterval     time.Duration
		originRate        float64
		pricePerGB        float64
		originHysteresis  float64
		initialAlpha      float64
		originKeys        []string
		relayKeys         []string
		workerKeys        []string
		btrPoints         int64
		pprofListen       string
	)
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: node registry, catalogue, source lookup and shard placement",
		Long: `Run the coordinator of a Swarmcast network. Origins register and publish their
catalogue here; edges register, heartbeat their inventory and receive placement
directives; players look up sources. Runs until interrupted (SIGINT/SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every flag is checked before the store or the key file is
			// created; what only the database or the network can refuse is
			// taken back by created.
			adminUser, adminPass, err := parseAdmin(admin)
			if err != nil {
				return err
			}
			sqlitePath, err := checkDSN(dsn)
			if err != nil {
				return err
			}
			if identityPath == "" {
				identityPath = defaultIdentityPath(dsn)
			}
			if err := checkCreatableFile("--identity", identityPath); err != nil {
				return err
			}
			if judgeKeyPath != "" {
				if err := checkCreatableFile("--judge-key", judgeKeyPath); err != nil {
					return err
				}
			}
			if err := checkListenAddr("--listen", listen); err != nil {
				return err
			}
			if err := checkAdvertise(advertise); err != nil {
				return err
			}
			if !(pricePerGB > 0) || math.IsInf(pricePerGB, 0) {
				return fmt.Errorf("--price-per-gb %v: want a positive price in USD per 10^9 bytes, e.g. %v", pricePerGB, coordinator.DefaultPricePerGB)
			}
			if err := checkLoopbackListenAddr("--pprof-listen", pprofListen); err != nil {
				return err
			}
			if err := checkCoordinatorNumbers(heartbeat, placement, halfLife, defaultPrice, pointsPerMB, originRate, originHysteresis, initialAlpha); err != nil {
				return err
			}
			allowedOrigins, err := parseNodeKeys(wire.RoleOrigin, originKeys)
			if err != nil {
				return err
			}
			allowedRelays, err := parseNodeKeys(wire.RoleRelay, relayKeys)
			if err != nil {
				return err
			}
			allowedWorkers, err := parseNodeKeys(wire.RoleWorker, workerKeys)
			if err != nil {
				return err
			}
			if btrPoints < 1 {
				return fmt.Errorf("--btr-points-per-segment %d: want 1 or more (points each worker of an agreed live segment earns)", btrPoints)
			}
			created := &newPaths{}
			defer created.undoUnlessKept()
			if sqlitePath != "" {
				created.note(sqlitePath, sqlitePath+"-wal", sqlitePath+"-shm", sqlitePath+"-journal")
			}
			created.note(identityPath, identityPath+".tmp")
			if judgeKeyPath != "" {
				created.note(judgeKeyPath, judgeKeyPath+".tmp")
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM) // cmd.Context: a test stops the coordinator by cancelling it
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if seed == 0 {
				seed = time.Now().UnixNano()
			}
			id, err := identity.LoadOrCreate(identityPath)
			if err != nil {
				return withFlagHint(fmt.Errorf("coordinator identity: %w", err), "check --identity FILE")
			}
			// The relays' judge's key: kept in a file, a restarted or
			// replacement coordinator signs relay exclusions as the same
			// judge (without it, a fresh key per process; stored
			// exclusions verify either way, their key is kept beside them).
			var judgeKey ed25519.PrivateKey
			if judgeKeyPath != "" {
				jk, err := identity.LoadOrCreate(judgeKeyPath)
				if err != nil {
					return withFlagHint(fmt.Errorf("relays' judge key: %w", err), "check --judge-key FILE")
				}
				judgeKey = jk.Key
			}
			store, err := coordinatordb.OpenConfig(ctx, dsn, coordinatordb.Config{
				CoordinatorKeys: []ed25519.PublicKey{id.Key.Public().(ed25519.PublicKey)},
				PointsPerMB:     pointsPerMB,
				// Storj seeds a new node's audit reputation with alpha 1000 =
				// 1/(1-lambda): one failure costs 0.1% of the score and a
				// node failing every audit is disqualified after 41. The
				// store's own default (1) would disqualify on the first failure.
				Reputation: coordinatordb.ReputationConfig{InitialAlpha: initialAlpha},
			})
			if err != nil {
				return withFlagHint(err, "set --db to sqlite:PATH or postgres://USER:PASS@HOST/DB")
			}
			defer store.Close()
			log.Info("coordinator store open", "dialect", store.Dialect(), "identity", id.ID)
			if admin != "" {
				a, err := accounting.BootstrapAdmin(ctx, store, adminUser, adminPass, time.Now())
				if err != nil {
					return withFlagHint(err, "fix --admin USER:PASSWORD")
				}
				log.Info("admin account ready", "username", a.Username, "id", a.ID)
			}
			c, err := coordinator.New(coordinator.Config{
				HeartbeatInterval: heartbeat,
				PlacementInterval: placement,
				DemandHalfLife:    halfLife,
				Seed:              seed,
				Log:               log,
				Store:             store,
				Accounting: accounting.Config{
					Identity:      id,
					DefaultPrice:  defaultPrice,
					AuditInterval: auditInterval,
				},
				// The AVARDO origin pool (off when the rate is 0).
				OriginPerServerRate: originRate,
				PricePerGB:          pricePerGB,
				OriginHysteresis:    originHysteresis,
				OriginKeys:          allowedOrigins,
				RelayKeys:           allowedRelays,
				WorkerKeys:          allowedWorkers,
				Live:                live.Config{PointsPerAgreedSegment: btrPoints, RelayJudgeKey: judgeKey},
			})
			if err != nil {
				return err
			}
			// Lookups (players' hottest request) on fasthttp, every other
			// request on net/http: httpserve.ListenSplit.
			srv, err := httpserve.ListenSplit(ctx, listen, advertise, c.ServeHotLookup, c.Handler(), log)
			if err != nil {
				return withFlagHint(err, "set --listen HOST:PORT")
			}
			if pprofListen != "" {
				// Profiles of a running coordinator (`swarmcast bench lookup
				// --cpu-profile`); on its own loopback listener, never on the
				// public one. It stops with ctx, like the main server.
				psrv, err := httpserve.Listen(ctx, pprofListen, "", pprofMux(), log)
				if err != nil {
					_ = srv.Kill()
					return withFlagHint(err, "set --pprof-listen 127.0.0.1:PORT")
				}
				defer psrv.Close()
				log.Info("pprof listening", "bind", psrv.Addr())
			}
			created.keep()
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
	cmd.Flags().StringVar(&dsn, "db", "sqlite:swarmcast-coordinator.db", "durable store: sqlite:PATH or postgres://USER:PASS@HOST/DB (accounts, points, settlements, reputation, catalogue, bans)")
	cmd.Flags().StringVar(&judgeKeyPath, "judge-key", "", "file holding the coordinator's key as the relays' judge (it signs relay exclusions in the channel logs), created if missing; give every restart or replacement of this coordinator the same file (default: a fresh key per process)")
	cmd.Flags().StringVar(&identityPath, "identity", "", "file holding the coordinator's signing key for order limits, created if missing (default: next to the SQLite file, or ./coordinator.key)")
	cmd.Flags().StringVar(&admin, "admin", "", "USER:PASSWORD: create this account if needed and make it an admin at start")
	cmd.Flags().Int64Var(&defaultPrice, "default-price", 0, "price in points of newly published videos (0 = free)")
	cmd.Flags().Float64Var(&pricePerGB, "price-per-gb", coordinator.DefaultPricePerGB, "origin egress price in USD per 10^9 bytes: the admin dashboard's money saved is edge egress at this price")
	cmd.Flags().Int64Var(&pointsPerMB, "points-per-mb", 10, "points credited to an edge per settled 1,000,000 bytes")
	cmd.Flags().DurationVar(&auditInterval, "audit-interval", 30*time.Second, "how often the audit chore challenges random edges (negative: off)")
	cmd.Flags().Float64Var(&originRate, "origin-pool-rate", 0, "segment requests per second one origin handles: runs the AVARDO origin pool, activating origins in stack order as load crosses thresholds (0: off, every origin listed)")
	cmd.Flags().StringArrayVar(&originKeys, "origin-key", nil, "node id (hex public key, `swarmcast origin --print-id`) allowed to register and publish as an origin; repeat for several (an admin allows more at run time: swarmcast node-keys allow origin ID)")
	cmd.Flags().StringArrayVar(&relayKeys, "relay-key", nil, "node id (`swarmcast relay --key FILE --print-id`) allowed to register as a live relay; repeat for several (at run time: swarmcast node-keys allow relay ID)")
	cmd.Flags().StringArrayVar(&workerKeys, "worker-key", nil, "node id (`swarmcast worker --key FILE --print-id`) allowed to register as a BTR worker; repeat for several (at run time: swarmcast node-keys allow worker ID)")
	cmd.Flags().Int64Var(&btrPoints, "btr-points-per-segment", live.DefaultPointsPerAgreedSegment, "points each BTR worker earns per agreed live segment (its f+1 replicas signed one digest), settled 10 min after the credit unless an exclusion forfeits it")
	cmd.Flags().Float64Var(&originHysteresis, "origin-pool-hysteresis", 0.1, "origin pool hysteresis band, a fraction of one origin's rate, in [0,1)")
	cmd.Flags().StringVar(&pprofListen, "pprof-listen", "", "loopback HOST:PORT serving Go's /debug/pprof/ profiles (default: off)")
	cmd.Flags().Float64Var(&initialAlpha, "reputation-initial-alpha", 1000, "audit reputation seed of a new edge (Storj: 1000; 1 disqualifies on the first failed audit)")
	return cmd
}

// pprofMux serves net/http/pprof's handlers.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// defaultIdentityPath puts the key next to a SQLite database file, else in
// the working directory.
func defaultIdentityPath(dsn string) string {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok && path != "" {
		return filepath.Join(filepath.Dir(path), "coordinator.key")
	}
	return "coordinator.key"
}

// parseAdmin checks --admin USER:PASSWORD (empty: no admin) against the
// account rules the store applies, so a bad value fails before the store
// is created. The store still has the last word (see newPaths).
func parseAdmin(admin string) (user, pass string, err error) {
	if admin == "" {
		return "", "", nil
	}
	user, pass, ok := strings.Cut(admin, ":")
	if !ok || pass == "" {
		return "", "", fmt.Errorf("--admin %q: want USER:PASSWORD, e.g. --admin admin:a-long-passphrase", user)
	}
	if err := coordinatordb.ValidateUsername(user); err != nil {
		return "", "", fmt.Errorf("--admin: username %q: %w", user, err)
	}
	if len(pass) < minAdminPassword {
		return "", "", fmt.Errorf("--admin: the password is %d characters; use at least %d", len(pass), minAdminPassword)
	}
	if strings.EqualFold(pass, user) {
		return "", "", errors.New("--admin: the password must not be the username")
	}
	return user, pass, nil
}

// minAdminPassword is the store's minimum password length
// (coordinatordb's minPasswordLen).
const minAdminPassword = 8

// checkDSN checks --db without opening it and returns the SQLite file's
// path ("" for PostgreSQL).
func checkDSN(dsn string) (sqlitePath string, err error) {
	const hint = "set --db to sqlite:PATH or postgres://USER:PASS@HOST/DB"
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return "", fmt.Errorf("--db %q: empty SQLite path (%s)", dsn, hint)
		}
		if strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
			return "", fmt.Errorf("--db %q: give a plain file path after sqlite:, e.g. sqlite:coord.db", dsn)
		}
		return path, checkCreatableFile("--db", path)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if u, err := url.Parse(dsn); err != nil || u.Host == "" {
			return "", fmt.Errorf("--db: not a PostgreSQL URL (%s)", hint)
		}
		return "", nil
	default:
		return "", fmt.Errorf("--db %q: unsupported store (%s)", redactedDSN(dsn), hint)
	}
}

// redactedDSN hides a password in a DSN echoed in an error.
func redactedDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

// checkCoordinatorNumbers checks the numeric flags before anything is
// created.
func checkCoordinatorNumbers(heartbeat, placement, halfLife time.Duration, price, pointsPerMB int64, originRate, hysteresis, alpha float64) error {
	switch {
	case heartbeat <= 0:
		return fmt.Errorf("--heartbeat %s: must be positive, e.g. 2s", heartbeat)
	case placement <= 0:
		return fmt.Errorf("--placement-interval %s: must be positive, e.g. 2s", placement)
	case halfLife <= 0:
		return fmt.Errorf("--demand-half-life %s: must be positive, e.g. 60s", halfLife)
	case price < 0:
		return fmt.Errorf("--default-price %d: must be 0 (free) or more", price)
	case pointsPerMB < 0:
		return fmt.Errorf("--points-per-mb %d: must be 0 or more", pointsPerMB)
	case !(originRate >= 0):
		return fmt.Errorf("--origin-pool-rate %v: must be 0 (off) or more", originRate)
	case !(hysteresis >= 0 && hysteresis < 1):
		return fmt.Errorf("--origin-pool-hysteresis %v: want a fraction in [0,1), e.g. 0.1", hysteresis)
	case !(alpha > 0):
		return fmt.Errorf("--reputation-initial-alpha %v: must be positive (Storj uses 1000)", alpha)
	}
	return nil
}
