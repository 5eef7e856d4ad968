// Command swarmcast is the single binary of the Swarmcast peer-assisted video
// delivery network; each role is a subcommand defined in its own cmd_*.go file.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// subcommands is filled by init functions in the cmd_*.go files, so adding a
// role touches only its own file. It is read-only after init: every
// newRootCommand builds fresh commands (and fresh flag variables) from it.
var subcommands []func() *cobra.Command

// newRootCommand builds the whole command tree. main executes it once;
// tests build one per case and run it with SetArgs.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "swarmcast",
		Short:         "Peer-assisted video delivery: coordinator, origin, edge, player, planner",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	requireSubcommand(root)
	// Inherited by every subcommand: a bad flag says where the flags are listed.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	return root
}

// requireSubcommand makes a command that only groups others print its help
// when run bare, and fail on an unknown subcommand with a hint, instead of
// cobra's default for nested groups (printing help and exiting 0).
func requireSubcommand(cmd *cobra.Command) {
	// cobra's own default for its suggestions: up to 2 edits away.
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf("did you mean %s? ", strings.Join(s, " or "))
		}
		return fmt.Errorf("unknown command %q for %q; %srun '%s --help' for the list", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "swarmcast:", err)
		os.Exit(1)
	}
}
