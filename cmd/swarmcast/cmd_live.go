package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newLiveCommand) }

// defaultPartMS is --low-latency's part target: four parts per default 1 s
// segment, so PART-HOLD-BACK (3 parts) is 750 ms.
const defaultPartMS = 250

// newLiveCommand manages live channels on a coordinator: create one (and
// get its stream key and ingest URLs), list them, end a broadcast, and (an
// admin) allow an account to broadcast.
func newLiveCommand() *cobra.Command {
	var coordinator, user, password string
	cmd := &cobra.Command{
		Use:   "live",
		Short: "Live channels: create (stream key, ingest URLs), list, end, rotate a stream key; allow broadcasters",
	}
	// client is a coordinator client, logged in when login is true.
	client := func(ctx context.Context, loginNeeded bool) (*wire.CoordinatorClient, error) {
		if coordinator == "" {
			return nil, errors.New("need --coordinator URL (the coordinator's base URL, like http://127.0.0.1:7000)")
		}
		urls, err := parseCoordinatorURLs(coordinator)
		if err != nil {
			return nil, err
		}
		coordinator = urls[0]
		cc := wire.NewCoordinatorClient(coordinator, nil)
		if !loginNeeded {
			return cc, nil
		}
		if password == "" {
			password = os.Getenv("SWARMCAST_PASSWORD")
		}
		if user == "" || password == "" {
			return nil, errors.New("need --user and --password (or $SWARMCAST_PASSWORD) of an admin or of an account an admin allowed to broadcast")
		}
		cc.Token, err = login(ctx, coordinator, user, password)
		return cc, err
	}
	var lowLatency bool
	var partMS int
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a channel; prints its id, ingest URLs and stream key (shown once)",
		Args:  exactArgs(1, "the channel's name, like: swarmcast live create news --coordinator URL --user U --password P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx, true)
			if err != nil {
				return err
			}
			req := wire.CreateChannelRequest{Name: args[0], PartMS: partMS}
			if lowLatency && partMS == 0 {
				req.PartMS = defaultPartMS
			}
			created, err := cc.CreateChannel(ctx, req)
			if err != nil {
				return fmt.Errorf("create channel %q: %w", args[0], withUnreachableHint(err, coordinator))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "channel     %s (%s)\n", created.Channel.ID, created.Channel.Name)
			if created.Channel.PartMS > 0 {
				fmt.Fprintf(out, "low latency parts of %d ms (LL-HLS)\n", created.Channel.PartMS)
			}
			for _, u := range created.RTMPIngest {
				fmt.Fprintf(out, "rtmp        %s\n", u)
			}
			for _, u := range created.HLSIngest {
				fmt.Fprintf(out, "hls push    %s\n", u)
			}
			if len(created.RTMPIngest)+len(created.HLSIngest) == 0 {
				fmt.Fprintf(out, "ingest      no origin is registered now: start one (swarmcast origin --live --rtmp HOST:PORT), then push to rtmp://HOST:PORT/live/KEY\n")
			}
			fmt.Fprintf(out, "stream key  %s\n", created.StreamKey)
			fmt.Fprintf(out, "(the key is shown only now: whoever holds it can broadcast on the channel)\n")
			return nil
		},
	}
	create.Flags().BoolVar(&lowLatency, "low-latency", false, fmt.Sprintf("a Low-Latency HLS channel: segments also published as signed parts of %d ms (see --part-ms)", defaultPartMS))
	create.Flags().IntVar(&partMS, "part-ms", 0, "a Low-Latency HLS channel with parts of this many ms (100 to half the segment)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List channels: id, name, state, error, head, viewers, recordings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx, false)
			if err != nil {
				return err
			}
			chs, err := cc.Channels(ctx)
			if err != nil {
				return fmt.Errorf("list channels: %w", withUnreachableHint(err, coordinator))
			}
			if len(chs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no channels yet: create one with swarmcast live create NAME")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATE\tHEAD\tVIEWERS\tRECORDINGS\tERROR")
			for _, c := range chs {
				head := "-"
				if c.Head >= 0 {
					head = fmt.Sprint(c.Head)
				}
				var recs []string
				for _, r := range c.Recordings {
					recs = append(recs, r.String())
				}
				rec := "-"
				if len(recs) > 0 {
					rec = strings.Join(recs, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.ID, c.Name, c.State, head, c.Viewers, rec, c.Error)
			}
			return tw.Flush()
		},
	}
	end := &cobra.Command{
		Use:   "end ID",
		Short: "End a channel's broadcast (its owner or an admin); the origin seals the recording",
		Args:  exactArgs(1, "the channel id (ch_…) from swarmcast live list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(args[0], "ch_") {
				return fmt.Errorf("channel id %q: want ch_ and 16 hex digits, as swarmcast live list shows", args[0])
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx, true)
			if err != nil {
				return err
			}
			info, err := cc.EndChannel(ctx, wire.ChannelID(args[0]))
			if err != nil {
				return fmt.Errorf("end channel %s: %w", args[0], withUnreachableHint(err, coordinator))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "channel %s (%s) %s\n", info.ID, info.Name, info.State)
			return nil
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate-key ID",
		Short: "Give a channel a new stream key (its owner or an admin); the old key stops working",
		Long: `Give a channel a new stream key, shown once. The old key is refused from now on:
a publisher still using it is cut off at its origin's next key check (within 10 s),
and the broadcast waits for its publisher; publish with the new key within the
resume window to continue the same broadcast.`,
		Args: exactArgs(1, "the channel id (ch_…) from swarmcast live list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(args[0], "ch_") {
				return fmt.Errorf("channel id %q: want ch_ and 16 hex digits, as swarmcast live list shows", args[0])
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx, true)
			if err != nil {
				return err
			}
			rotated, err := cc.RotateStreamKey(ctx, wire.ChannelID(args[0]))
			if err != nil {
				return fmt.Errorf("rotate the stream key of %s: %w", args[0], withUnreachableHint(err, coordinator))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "channel     %s (%s)\n", rotated.Channel.ID, rotated.Channel.Name)
			for _, u := range rotated.RTMPIngest {
				fmt.Fprintf(out, "rtmp        %s\n", u)
			}
			for _, u := range rotated.HLSIngest {
				fmt.Fprintf(out, "hls push    %s\n", u)
			}
			fmt.Fprintf(out, "stream key  %s\n", rotated.StreamKey)
			fmt.Fprintf(out, "(the old key is refused from now on; a publisher using it is cut off within 10 s)\n")
			return nil
		},
	}
	allow := &cobra.Command{
		Use:   "allow USERNAME",
		Short: "Allow an account to create channels (an admin)",
		Args:  exactArgs(1, "the account's username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx, true)
			if err != nil {
				return err
			}
			if err := cc.AllowBroadcaster(ctx, args[0]); err != nil {
				return fmt.Errorf("allow %s to broadcast: %w", args[0], withUnreachableHint(err, coordinator))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may create channels\n", args[0])
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, list, end, rotate, allow} {
		c.Flags().StringVar(&coordinator, "coordinator", "", "coordinator base URL")
		c.Flags().StringVar(&user, "user", "", "username")
		c.Flags().StringVar(&password, "password", "", "password (default $SWARMCAST_PASSWORD)")
		cmd.AddCommand(c)
	}
	requireSubcommand(cmd)
	return cmd
}

// exactArgs is cobra.ExactArgs(n) with an error that says what to give.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("want %d argument(s), got %d: %s", n, len(args), what)
		}
		return nil
	}
}
