package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/recq/recq/streams"
)

func newGroupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List consumer groups and show their members, offsets and lag",
	}
	cmd.AddCommand(newGroupsListCmd(g), newGroupsDescribeCmd(g), newGroupsResetCmd(g))
	return cmd
}

func newGroupsListCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Long: `List the broker's consumer groups with their state (Stable, Empty, ...) and
protocol type. recq's groups are <aggregate>.runner for aggregate runners
and <app>.<name>.v<version> for projectors and observers.`,
		Example: `  recq groups list
  recq groups list -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				groups, err := adm.ListGroups(ctx)
				if err != nil {
					return err
				}
				return render(cmd.OutOrStdout(), out, groupSummariesJSON(groups), func(w io.Writer) {
					fmt.Fprintln(w, "GROUP\tSTATE\tPROTOCOL")
					for _, gr := range groups {
						fmt.Fprintf(w, "%s\t%s\t%s\n", gr.Name, gr.State, gr.ProtocolType)
					}
				})
			})
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func newGroupsDescribeCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, committed offsets and lag per partition",
		Long: `Show a consumer group's state and members, and for every partition it has
committed offsets for or is assigned: the committed offset, the end offset and
the lag (end - committed; "-" when it cannot be computed, e.g. no commit yet).`,
		Example: `  recq groups describe billing
  recq groups describe todo.stats.v1 -o json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				info, err := adm.DescribeGroup(ctx, a[0])
				if errors.Is(err, streams.ErrGroupNotFound) {
					return fmt.Errorf("consumer group %q does not exist (see: recq groups list)", a[0])
				}
				if err != nil {
					return err
				}
				return render(cmd.OutOrStdout(), out, groupInfoJSON(info), func(w io.Writer) {
					fmt.Fprintf(w, "group %s: state %s, %s\n", info.Name, info.State, plural(len(info.Members), "member"))
					if len(info.Members) > 0 {
						fmt.Fprintln(w, "MEMBER\tCLIENT\tHOST\tASSIGNED")
						for _, m := range info.Members {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.MemberID, m.ClientID, m.Host, assignedText(m.Assigned))
						}
					}
					fmt.Fprintln(w, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
					var total int64
					for _, p := range info.Partitions {
						fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\n", p.Topic, p.Partition, orDash(p.Committed), p.End, orDash(p.Lag), p.MemberID)
						total += max(p.Lag, 0)
					}
					fmt.Fprintf(w, "total lag\t%d\n", total)
				})
			})
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func orDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func newGroupsResetCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	var to string
	var topics []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reset GROUP --to earliest|latest|OFFSET|TIME [--topic T]...",
		Short: "Move a stopped group's committed offsets",
		Long: `Move a consumer group's committed offsets, so that its consumers start
elsewhere when they next join: to the earliest record still stored, to the
latest (the last stable offset: skip everything now in the topic), to an
offset (clipped to each partition's range) or to the first record at or after
an RFC 3339 time.

The group must be stopped: a group with members is refused, because its
consumers would overwrite the reset with their next commit. Without --topic,
every topic the group has committed offsets for is reset. --dry-run prints
the changes without committing them.

Projectors that keep their positions in a state store (recq's exactly-once
Redis store) ignore these Kafka offsets, which only show their lag: their
position lives next to their read model, and moving one without the other
would lose or double-count events. To rebuild such a read model, bump the
projector's version: the new group starts from the beginning under new keys.
Observers and consumers on Kafka offsets do follow a reset.`,
		Example: `  recq groups reset billing --to earliest
  recq groups reset billing --to 2026-11-01T00:00:00Z --topic orders --dry-run
  recq groups reset todo.mailer.v1 --to latest`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if to == "" {
				return usagef("groups reset: --to is required: earliest, latest, an offset or an RFC 3339 time (see 'recq groups reset --help')")
			}
			start, err := streams.ParseStartAt(to)
			if err != nil {
				return usagef("groups reset: --to: %v", err)
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				changes, err := adm.ResetGroup(ctx, a[0], start, dryRun, topics...)
				switch {
				case errors.Is(err, streams.ErrGroupActive):
					return fmt.Errorf("consumer group %q has active members: stop its consumers, then reset (recq groups describe %s shows them)", a[0], a[0])
				case errors.Is(err, streams.ErrGroupNotFound):
					return fmt.Errorf("consumer group %q has no committed offsets: name the topics to position it on with --topic", a[0])
				case errors.Is(err, streams.ErrTopicNotFound):
					return fmt.Errorf("%v (see: recq topic list)", err)
				case err != nil:
					return err
				}
				return render(cmd.OutOrStdout(), out, offsetChangesJSON(changes), func(w io.Writer) {
					fmt.Fprintln(w, "TOPIC\tPARTITION\tOLD\tNEW")
					for _, c := range changes {
						fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", c.Topic, c.Partition, orDash(c.Old), c.New)
					}
					if dryRun {
						fmt.Fprintln(w, "dry run: nothing committed")
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "where to move: earliest, latest, an offset, or an RFC 3339 time")
	cmd.Flags().StringSliceVar(&topics, "topic", nil, "reset only this topic (repeatable); default: every topic the group committed")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}
