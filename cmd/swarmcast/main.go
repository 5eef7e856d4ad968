// Command swarmcast is the single binary of the Swarmcast peer-assisted video
// delivery network; each role is a subcommand defined in its own cmd_*.go file.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// subcommands is filled by init functions in the cmd_*.go files, so adding a
// role touches only its own file.
var subcommands []func() *cobra.Command

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "swarmcast",
		Short:         "Peer-assisted video delivery: coordinator, origin, edge, player, planner",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	return root
}

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "swarmcast:", err)
		os.Exit(1)
	}
}
