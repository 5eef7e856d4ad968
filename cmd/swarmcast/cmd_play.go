package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/httpserve"
	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/viewer"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newPlayCommand) }

func newPlayCommand() *cobra.Command {
	var (
		coordinator string
		listen      string
		headless    bool
		rendition   int
		speed       float64
		region      string
		seed        int64
		token       string
		user        string
		password    string
		webOrigins  []string
	)
	cmd := &cobra.Command{
		Use:   "play <video-id> --coordinator URL",
		Short: "Watch a video: a local HLS gateway for any player (or --headless to measure QoE)",
		Long: `Start a viewer that fetches any k of n verified shards per segment from edges
and origins, and serve the video as ordinary HLS on 127.0.0.1 for ffplay, VLC,
mpv or Safari. With --headless, play the whole video with a virtual player and
print the quality of experience (startup, stalls, bytes by source) instead.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one video id (64 hex digits, printed by swarmcast ingest), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := content.ParseVideoID(args[0])
			if err != nil {
				return err
			}
			// Flags first, then the coordinator and the video, then the
			// account: no URL is printed for a play that cannot work.
			if coordinator == "" {
				return fmt.Errorf("no coordinator: pass --coordinator %s (the coordinator's base URL)", coordinatorExample)
			}
			coordinators, err := parseCoordinatorURLs(coordinator)
			if err != nil {
				return err
			}
			coordinator = coordinators[0]
			if err := checkListenAddr("--listen", listen); err != nil {
				return err
			}
			if err := checkWebOrigins(webOrigins); err != nil {
				return err
			}
			if headless && !(speed > 0) {
				return fmt.Errorf("--speed %v: must be positive (1 = real time)", speed)
			}
			if rendition < -1 {
				return fmt.Errorf("--rendition %d: want a rendition index, or -1 for the highest", rendition)
			}
			if token == "" {
				token = os.Getenv("SWARMCAST_TOKEN")
			}
			if user != "" && password == "" {
				password = os.Getenv("SWARMCAST_PASSWORD")
			}
			if user != "" && password == "" {
				return errors.New("--user needs --password (or $SWARMCAST_PASSWORD)")
			}
			if user == "" && token == "" {
				// The coordinator hands content keys to signed-in accounts
				// only, free videos included: without one nothing plays.
				return fmt.Errorf("play needs an account to get the video's key: pass --user NAME --password PASS (create one with swarmcast account signup --coordinator %s --user NAME --password PASS) or --token", coordinator)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt) // cmd.Context: a test stops the gateway by cancelling it
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			if err := checkVideoListed(ctx, coordinator, id); err != nil {
				return err
			}
			if user != "" {
				if token, err = login(ctx, coordinator, user, password); err != nil {
					return err
				}
			}
			if err := unlock(ctx, cmd.OutOrStdout(), coordinator, token, id); err != nil {
				return err
			}
			reg := httpserve.NewRegistry()
			v, err := viewer.New(viewer.Config{
				Coordinator: coordinator,
				Token:       token,
				Identity:    identity.New(),
				Region:      region,
				Seed:        seed,
				Log:         log,
				Registry:    reg,
				WebOrigins:  append(coordinators, webOrigins...),
			})
			if err != nil {
				return err
			}
			defer v.Close()
			if headless {
				q, err := v.Play(ctx, id, viewer.PlayOptions{Rendition: rendition, Speed: speed})
				printQoE(cmd.OutOrStdout(), q)
				if errors.Is(err, viewer.ErrNotEntitled) {
					return withFlagHint(err, "pass --user and --password, or --token, to unlock it")
				}
				return err
			}
			srv, err := httpserve.Listen(ctx, listen, "", v.Handler(), log)
			if err != nil {
				return withFlagHint(err, "set --listen 127.0.0.1:PORT")
			}
			announceGateway(v, srv.Advertise, cmd.ErrOrStderr())
			url := fmt.Sprintf("%s/videos/%s/master.m3u8", srv.Advertise, id)
			fmt.Fprintf(cmd.OutOrStdout(), "play: %s\n", url)
			fmt.Fprintf(cmd.OutOrStdout(), "open it in any HLS player, e.g.\n  ffplay %s\n  vlc %s\n  mpv %s\ncatalogue: %s/   (Ctrl-C to stop)\n", url, url, url, srv.Advertise)
			<-ctx.Done()
			_ = srv.Close()
			return srv.Wait()
		},
	}
	cmd.Flags().StringVar(&coordinator, "coordinator", "", "coordinator base URL, e.g. http://127.0.0.1:7000")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "gateway address (keep it on 127.0.0.1: it serves the content key)")
	cmd.Flags().StringSliceVar(&webOrigins, "web-origin", nil, webOriginUsage)
	cmd.Flags().BoolVar(&headless, "headless", false, "play through with a virtual player and print the QoE table instead of serving HLS")
	cmd.Flags().IntVar(&rendition, "rendition", -1, "rendition index for --headless (-1 = highest)")
	cmd.Flags().Float64Var(&speed, "speed", 1, "playback clock multiplier for --headless (1 = real time)")
	cmd.Flags().StringVar(&region, "region", "", "region hint for source ranking")
	cmd.Flags().StringVar(&token, "token", "", "session token (from login) sent to the coordinator; the video is unlocked with it before playing (default $SWARMCAST_TOKEN)")
	cmd.Flags().StringVar(&user, "user", "", "log in as this account (instead of --token) and unlock the video before playing")
	cmd.Flags().StringVar(&password, "password", "", "password for --user (default $SWARMCAST_PASSWORD)")
	cmd.Flags().Int64Var(&seed, "seed", time.Now().UnixNano(), "seed of the fetch scheduler's random choices")
	return cmd
}

// checkVideoListed asks the coordinator for its catalogue: it says so if
// the coordinator is unreachable or does not list the video.
func checkVideoListed(ctx context.Context, coordinator string, id content.VideoID) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	videos, err := wire.NewCoordinatorClient(coordinator, nil).Videos(ctx)
	if err != nil {
		return fmt.Errorf("the coordinator at %s does not answer (%v): is swarmcast coordinator running there? check --coordinator", coordinator, err)
	}
	ids := make([]string, 0, len(videos))
	for _, v := range videos {
		if v.ID == id {
			return nil
		}
		ids = append(ids, v.ID.String())
	}
	if len(ids) == 0 {
		return fmt.Errorf("video %s is not in the catalogue of %s, which is empty: start an origin on the store it was ingested into (swarmcast origin --store DIR --coordinator %s)", id, coordinator, coordinator)
	}
	if len(ids) > 5 {
		ids = append(ids[:5], "…")
	}
	return fmt.Errorf("video %s is not in the catalogue of %s; it lists %s (or start an origin on the store the video was ingested into)", id, coordinator, strings.Join(ids, ", "))
}

// withUnreachableHint adds what to check to an error that never reached
// the coordinator (refused, timed out, unknown host); an answer the
// coordinator gave is returned as is.
func withUnreachableHint(err error, coordinator string) error {
	var transport *url.Error
	if errors.As(err, &transport) {
		return fmt.Errorf("%w (is swarmcast coordinator running at %s? check --coordinator)", err, coordinator)
	}
	return err
}

// login exchanges an account's credentials for a session token.
func login(ctx context.Context, coordinator, user, password string) (string, error) {
	cc := wire.NewCoordinatorClient(coordinator, nil)
	resp, err := cc.Login(ctx, wire.Credentials{Username: user, Password: password})
	if wire.IsAuthError(err) {
		return "", fmt.Errorf("log in as %s: %w (check --password; a new user signs up first: swarmcast account signup --coordinator %s --user %s --password PASS)", user, err, coordinator, user)
	}
	if err != nil {
		return "", fmt.Errorf("log in as %s: %w", user, withUnreachableHint(err, coordinator))
	}
	return resp.Token, nil
}

// unlock spends the account's points on the video if it is not entitled
// yet, and says what it cost.
func unlock(ctx context.Context, out io.Writer, coordinator, token string, id content.VideoID) error {
	cc := wire.NewCoordinatorClient(coordinator, nil)
	cc.Token = token
	resp, err := cc.UnlockVideo(ctx, id)
	if err != nil {
		return fmt.Errorf("unlock video %s: %w", id, err)
	}
	if resp.AlreadyEntitled {
		fmt.Fprintf(out, "video %s already unlocked; balance %d points\n", id, resp.Balance)
	} else {
		fmt.Fprintf(out, "unlocked video %s: charged %d points; balance %d points\n", id, resp.Charged, resp.Balance)
	}
	return nil
}

// printQoE writes the QoE summary as a table.
func printQoE(w io.Writer, q viewer.QoE) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "completed\t%v\n", q.Completed)
	fmt.Fprintf(tw, "startup\t%v\n", q.Startup.Round(time.Millisecond))
	fmt.Fprintf(tw, "stalls\t%d (%v)\n", q.Stalls, q.StallTime.Round(time.Millisecond))
	fmt.Fprintf(tw, "played\t%v\n", q.PlayTime.Round(time.Millisecond))
	total := q.OriginBytes + q.EdgeBytes
	share := 0.0
	if total > 0 {
		share = 100 * float64(q.EdgeBytes) / float64(total)
	}
	fmt.Fprintf(tw, "edge bytes\t%d (%.1f%%)\n", q.EdgeBytes, share)
	fmt.Fprintf(tw, "origin bytes\t%d\n", q.OriginBytes)
	fmt.Fprintf(tw, "bad shards\t%d\n", q.BadShards)
	fmt.Fprintf(tw, "banned\t%d\n", len(q.Banned))
	nodes := make([]string, 0, len(q.BytesBySource))
	for n := range q.BytesBySource {
		nodes = append(nodes, string(n))
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		fmt.Fprintf(tw, "  from %.16s…\t%d bytes\n", n, q.BytesBySource[wire.NodeID(n)])
	}
	_ = tw.Flush()
}
