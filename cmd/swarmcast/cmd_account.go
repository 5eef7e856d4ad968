package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/wire"
)

func init() { subcommands = append(subcommands, newAccountCommand) }

// newAccountCommand is the viewer's and contributor's account from the
// command line: sign up, see the balance and what is unlocked.
func newAccountCommand() *cobra.Command {
	var coordinator, user, password string
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Sign up and inspect an account (points balance, unlocked videos, edge)",
	}
	creds := func() (wire.Credentials, error) {
		if password == "" {
			password = os.Getenv("SWARMCAST_PASSWORD")
		}
		if coordinator == "" || user == "" || password == "" {
			return wire.Credentials{}, errors.New("need --coordinator, --user and --password (or $SWARMCAST_PASSWORD)")
		}
		urls, err := parseCoordinatorURLs(coordinator)
		if err != nil {
			return wire.Credentials{}, err
		}
		coordinator = urls[0]
		return wire.Credentials{Username: user, Password: password}, nil
	}
	signup := &cobra.Command{
		Use:   "signup",
		Short: "Create an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := creds()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			a, err := wire.NewCoordinatorClient(coordinator, nil).Signup(ctx, c)
			if err != nil {
				return fmt.Errorf("sign up %s: %w", c.Username, withUnreachableHint(err, coordinator))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account %s created (id %d, %d points)\n", a.Username, a.ID, a.Balance)
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show balance, unlocked videos and the bound edge",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := creds()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			token, err := login(ctx, coordinator, c.Username, c.Password)
			if err != nil {
				return err
			}
			cc := wire.NewCoordinatorClient(coordinator, nil)
			cc.Token = token
			a, err := cc.Me(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "account  %s (id %d, %s)\nbalance  %d points\n", a.Username, a.ID, a.Role, a.Balance)
			if a.Edge != "" {
				fmt.Fprintf(out, "edge     %s\n", a.Edge)
				if st, err := cc.EdgeStatus(ctx, a.Edge); err == nil {
					fmt.Fprintf(out, "         reputation %.4f, audits %d passed / %d failed, earned %d points (%d frozen)\n",
						st.Reputation, st.AuditsPassed, st.AuditsFailed, st.CreditedPoints, st.FrozenPoints)
					if st.Disqualified {
						fmt.Fprintf(out, "         DISQUALIFIED at %s: %s\n", st.DisqualifiedAt.Format("2006-01-02 15:04:05"), st.DisqualifiedReason)
					}
				}
			}
			for _, v := range a.Entitled {
				fmt.Fprintf(out, "unlocked %s\n", v)
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{signup, show} {
		c.Flags().StringVar(&coordinator, "coordinator", "", "coordinator base URL")
		c.Flags().StringVar(&user, "user", "", "username")
		c.Flags().StringVar(&password, "password", "", "password (default $SWARMCAST_PASSWORD)")
		cmd.AddCommand(c)
	}
	requireSubcommand(cmd)
	return cmd
}
