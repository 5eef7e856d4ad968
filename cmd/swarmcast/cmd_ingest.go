package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/internal/progress"
	"github.com/swarmcast/swarmcast/internal/sample"
)

func init() { subcommands = append(subcommands, newIngestCommand, newVerifyCommand) }

func newIngestCommand() *cobra.Command {
	var (
		store  string
		k, n   int
		title  string
		useSam bool
	)
	cmd := &cobra.Command{
		Use:   "ingest <video-file | hls-dir> --store DIR",
		Short: "Package a video: transcode, segment, encrypt, erasure-code, hash and sign",
		Long: `Package a video file (needs ffmpeg) or an unencrypted MPEG-TS HLS directory
into the store. The last line of standard output is the video id.
Use --sample to ingest the bundled 30 s test clip.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if useSam && len(args) == 0 || !useSam && len(args) == 1 {
				return nil
			}
			return fmt.Errorf("give exactly one video file or HLS directory (or --sample)")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// Everything is checked before the store is created; a store this
			// run created is removed again if the ingest fails.
			params := content.Params{K: k, NMax: n}
			if err := params.Validate(); err != nil {
				return withFlagHint(err, "set --k and --n-max")
			}
			input := ""
			if !useSam {
				input = args[0]
				if _, err := os.Stat(input); err != nil {
					return fmt.Errorf("%s: %w; give a video file or an MPEG-TS HLS directory (or --sample for the bundled clip)", input, errors.Unwrap(err))
				}
			}
			if err := checkCreatableDir("--store", store); err != nil {
				return err
			}
			created := &newPaths{}
			defer created.undoUnlessKept()
			created.note(store)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			s, err := content.OpenStore(store)
			if err != nil {
				return withFlagHint(err, "check --store DIR")
			}
			if useSam {
				dir, err := os.MkdirTemp("", "swarmcast-sample-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if err := sample.WriteHLS(dir); err != nil {
					return err
				}
				input = dir
				if title == "" {
					title = sample.Title
				}
			}
			bar := progress.NewBar(cmd.ErrOrStderr())
			id, err := s.Ingest(ctx, input, content.IngestOptions{
				Params:   params,
				Title:    title,
				Progress: bar.Update,
			})
			bar.Done()
			if errors.Is(err, syscall.ENOSPC) {
				return withFlagHint(err, "or point --store at a bigger disk")
			}
			if err != nil {
				return err
			}
			created.keep()
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVar(&store, "store", "swarmcast-store", "publisher store directory (created if missing)")
	cmd.Flags().IntVar(&k, "k", content.DefaultDataShards, "data shards per segment (any k shards rebuild a segment)")
	cmd.Flags().IntVar(&n, "n-max", content.DefaultTotalShards, "total shards per segment, data + parity")
	cmd.Flags().StringVar(&title, "title", "", "title (default: the input's file name)")
	cmd.Flags().BoolVar(&useSam, "sample", false, "ingest the bundled sample clip")
	return cmd
}

func newVerifyCommand() *cobra.Command {
	var store string
	cmd := &cobra.Command{
		Use:   "verify <video-id>... --store DIR",
		Short: "Check every stored byte of videos against their signed manifests (like git fsck)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// verify only reads: every id and the store are checked first,
			// and a directory that is not a store is not made into one.
			ids := make([]content.VideoID, 0, len(args))
			for _, a := range args {
				id, err := content.ParseVideoID(a)
				if err != nil {
					return fmt.Errorf("%w (a video id is the last line swarmcast ingest printed)", err)
				}
				ids = append(ids, id)
			}
			if err := checkStoreDir(store); err != nil {
				return err
			}
			s, err := content.OpenStore(store)
			if err != nil {
				return withFlagHint(err, "check --store DIR")
			}
			for _, id := range ids {
				bar := progress.NewBar(cmd.ErrOrStderr())
				err = s.VerifyVideo(id, func(done, total int) { bar.Update("verify", float64(done), float64(total)) })
				bar.Done()
				if err != nil {
					return fmt.Errorf("verify %s: %w", id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok %s\n", id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&store, "store", "swarmcast-store", "store directory")
	return cmd
}
