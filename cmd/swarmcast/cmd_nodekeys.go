package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/internal/identity"
	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newNodeKeysCommand) }

// newNodeKeysCommand admits node keys per role at run time (an admin):
// origins, relays and BTR workers register only when the operator allowed
// their key (also: swarmcast coordinator --origin-key/--relay-key/--worker-key).
func newNodeKeysCommand() *cobra.Command {
	var coordinator, user, password string
	cmd := &cobra.Command{
		Use:   "node-keys",
		Short: "Allow, revoke and list the node keys admitted as origins, relays and BTR workers (an admin)",
		Long: `Origins, live relays and BTR workers register with the coordinator only when the
operator allowed their node key (its id, printed by swarmcast origin --print-id,
swarmcast relay --key FILE --print-id, swarmcast worker --key FILE --print-id).
Keys given to swarmcast coordinator (--origin-key, --relay-key, --worker-key) are
allowed for that run; these commands allow and revoke keys at run time, durably
(every coordinator on the same database takes them). A revoked node is dropped at
once (a relay leaves the trees) and its next registration is refused.`,
	}
	client := func(ctx context.Context) (*wire.CoordinatorClient, error) {
		if coordinator == "" {
			return nil, errors.New("need --coordinator URL (the coordinator's base URL, like http://127.0.0.1:7000)")
		}
		urls, err := parseCoordinatorURLs(coordinator)
		if err != nil {
			return nil, err
		}
		coordinator = urls[0]
		if password == "" {
			password = os.Getenv("SWARMCAST_PASSWORD")
		}
		if user == "" || password == "" {
			return nil, errors.New("need --user and --password (or $SWARMCAST_PASSWORD) of an admin account (swarmcast coordinator --admin USER:PASSWORD makes one)")
		}
		cc := wire.NewCoordinatorClient(coordinator, nil)
		cc.Token, err = login(ctx, coordinator, user, password)
		return cc, err
	}
	roleAndKey := func(args []string) (wire.Role, wire.NodeID, error) {
		role, node := wire.Role(args[0]), wire.NodeID(args[1])
		if err := wire.CheckAllowListedRole(role); err != nil {
			return "", "", err
		}
		if err := wire.CheckNodeID(node); err != nil {
			return "", "", fmt.Errorf("%v; pass the id `swarmcast %s --print-id` prints", err, role)
		}
		return role, node, nil
	}
	const argsHint = "ROLE NODE_ID, like: swarmcast node-keys allow relay 3f2a… --coordinator URL --user ADMIN (ROLE: origin, relay or worker)"
	// keyCommand is allow or revoke: the same arguments and client, one call.
	keyCommand := func(verb, short, done string, call func(*wire.CoordinatorClient, context.Context, wire.Role, wire.NodeID) error) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " ROLE NODE_ID",
			Short: short,
			Args:  exactArgs(2, argsHint),
			RunE: func(cmd *cobra.Command, args []string) error {
				role, node, err := roleAndKey(args)
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
				defer stop()
				cc, err := client(ctx)
				if err != nil {
					return err
				}
				if err := call(cc, ctx, role, node); err != nil {
					return fmt.Errorf("%s %s %s: %w", verb, role, node, withUnreachableHint(err, coordinator))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", role, node, done)
				return nil
			},
		}
	}
	allow := keyCommand("allow", "Allow a node key to register as an origin, a relay or a worker",
		"allowed: it registers at its next attempt", (*wire.CoordinatorClient).AllowNodeKey)
	revoke := keyCommand("revoke", "Revoke a node key: the node is dropped now and refused from then on",
		"revoked: dropped from the registry and refused from now on", (*wire.CoordinatorClient).RevokeNodeKey)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the allowed node keys: role, node id, where allowed (flag or store), when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cc, err := client(ctx)
			if err != nil {
				return err
			}
			keys, err := cc.NodeKeys(ctx)
			if err != nil {
				return fmt.Errorf("list node keys: %w", withUnreachableHint(err, coordinator))
			}
			if len(keys) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no node keys allowed: swarmcast node-keys allow ROLE NODE_ID")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tNODE\tSOURCE\tALLOWED")
			for _, k := range keys {
				when := "-"
				if k.AllowedMS > 0 {
					when = time.UnixMilli(k.AllowedMS).UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Role, k.NodeID, k.Source, when)
			}
			return tw.Flush()
		},
	}
	for _, c := range []*cobra.Command{allow, revoke, list} {
		c.Flags().StringVar(&coordinator, "coordinator", "", "coordinator base URL")
		c.Flags().StringVar(&user, "user", "", "admin username")
		c.Flags().StringVar(&password, "password", "", "password (default $SWARMCAST_PASSWORD)")
		cmd.AddCommand(c)
	}
	requireSubcommand(cmd)
	return cmd
}

// parseNodeKeys checks the node ids of a --ROLE-key flag.
func parseNodeKeys(role wire.Role, keys []string) ([]wire.NodeID, error) {
	var out []wire.NodeID
	for _, k := range keys {
		if err := wire.CheckNodeID(wire.NodeID(k)); err != nil {
			return nil, withFlagHint(fmt.Errorf("--%s-key: %w", role, err), fmt.Sprintf("pass the node id `swarmcast %s --print-id` prints", role))
		}
		out = append(out, wire.NodeID(k))
	}
	return out, nil
}

// printNodeID is a relay's or worker's --print-id: the id of the key in
// keyFile (created if missing), which the operator allows with
// --ROLE-key. Without a key file a node gets a fresh identity each run,
// so there is nothing to allow ahead of time.
func printNodeID(cmd *cobra.Command, role wire.Role, keyFile string) error {
	if keyFile == "" {
		return fmt.Errorf("--print-id needs --key FILE: without a key file a %s gets a fresh identity every run, which the coordinator cannot allow ahead", role)
	}
	id, err := identity.LoadOrCreate(keyFile)
	if err != nil {
		return withFlagHint(err, "check --key FILE")
	}
	fmt.Fprintln(cmd.OutOrStdout(), id.ID)
	return nil
}
