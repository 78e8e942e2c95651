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
	cmd.AddCommand(newGroupsListCmd(g), newGroupsDescribeCmd(g))
	return cmd
}

func newGroupsListCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				groups, err := adm.ListGroups(ctx)
				if err != nil {
					return err
				}
				return render(cmd.OutOrStdout(), out, groups, func(w io.Writer) {
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
				return render(cmd.OutOrStdout(), out, info, func(w io.Writer) {
					fmt.Fprintf(w, "group %s: state %s, %d members\n", info.Name, info.State, len(info.Members))
					if len(info.Members) > 0 {
						fmt.Fprintln(w, "MEMBER\tCLIENT\tHOST\tASSIGNED")
						for _, m := range info.Members {
							fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", m.MemberID, m.ClientID, m.Host, m.Assigned)
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
