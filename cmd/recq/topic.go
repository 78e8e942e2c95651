package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/recq/recq/streams"
)

func newTopicCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cmd.AddCommand(newTopicCreateCmd(g), newTopicListCmd(g), newTopicDescribeCmd(g), newTopicAlterCmd(g), newTopicDeleteCmd(g))
	return cmd
}

func newTopicCreateCmd(g *globals) *cobra.Command {
	var (
		spec    streams.TopicSpec
		configs []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic with a number of partitions and optional topic configs.
Records with the same key go to the same partition, so the partition count
bounds how many consumers of one group can work in parallel.

Names and configs are checked against Kafka's rules first (a wrong call
exits 2): a name is 1 to 249 ASCII letters, digits, '.', '_' or '-' (not
"." or ".."); a config must be a Kafka topic config with a value of its
type (retention.ms=-1 keeps records forever). Keys under confluent. pass
unchecked.`,
		Example: `  recq topic create orders --partitions 6
  recq topic create customers --partitions 3 --config cleanup.policy=compact`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if spec.Partitions < 1 {
				return usagef("--partitions must be at least 1, got %d", spec.Partitions)
			}
			if err := checkTopicName(a[0]); err != nil {
				return err
			}
			cfgs, err := keyValues("config", configs)
			if err != nil {
				return err
			}
			if err := checkTopicConfigs(cfgs); err != nil {
				return err
			}
			spec.Name, spec.Configs = a[0], cfgs
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				if err := adm.CreateTopic(ctx, spec); err != nil {
					if errors.Is(err, streams.ErrTopicExists) {
						return fmt.Errorf("topic %q already exists (see: recq topic describe %s)", spec.Name, spec.Name)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %s\n", spec.Name, plural(int(spec.Partitions), "partition"))
				return nil
			})
		},
	}
	cmd.Flags().Int32VarP(&spec.Partitions, "partitions", "p", 1, "number of partitions")
	cmd.Flags().Int16Var(&spec.Replicas, "replicas", 0, "replication factor (0: the broker's default)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	return cmd
}

func newTopicListCmd(g *globals) *cobra.Command {
	var (
		internal bool
		out      = outputFlag("table")
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Example: `  recq topic list
  recq topic list --internal -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				topics, err := adm.ListTopics(ctx, internal)
				if err != nil {
					return err
				}
				return render(cmd.OutOrStdout(), out, topicSummariesJSON(topics), func(w io.Writer) {
					fmt.Fprintln(w, "TOPIC\tPARTITIONS")
					for _, t := range topics {
						fmt.Fprintf(w, "%s\t%d\n", t.Name, t.Partitions)
					}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics (__consumer_offsets, ...)")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func newTopicDescribeCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show a topic's id, its retention (what it keeps, broker defaults included),
every partition's leader, replicas, start and end offsets and record
count, and the configs set on the topic.`,
		Example: `  recq topic describe orders
  recq topic describe todo.events -o json | jq '.partitions[].end_offset'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				info, err := adm.DescribeTopic(ctx, a[0])
				if errors.Is(err, streams.ErrTopicNotFound) {
					return fmt.Errorf("topic %q does not exist (see: recq topic list)", a[0])
				}
				if err != nil {
					return err
				}
				return render(cmd.OutOrStdout(), out, topicInfoJSON(info), func(w io.Writer) {
					fmt.Fprintf(w, "topic %s (id %s), %s\n", info.Name, info.ID, plural(len(info.Partitions), "partition"))
					keeps := "records are deleted by age, size or compaction"
					if info.Retention.Forever() {
						keeps = "every record is kept"
					}
					fmt.Fprintf(w, "retention: %s (%s)\n", info.Retention, keeps)
					fmt.Fprintln(w, "PARTITION\tLEADER\tREPLICAS\tSTART\tEND\tRECORDS")
					for _, p := range info.Partitions {
						fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%d\t%d\n", p.Partition, p.Leader, joinInts(p.Replicas), p.StartOffset, p.EndOffset, p.EndOffset-p.StartOffset)
					}
					keys := make([]string, 0, len(info.Configs))
					for k := range info.Configs {
						keys = append(keys, k)
					}
					slices.Sort(keys)
					if len(keys) > 0 {
						fmt.Fprintln(w, "CONFIG\tVALUE")
					}
					for _, k := range keys {
						fmt.Fprintf(w, "%s\t%s\n", k, info.Configs[k])
					}
				})
			})
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func newTopicAlterCmd(g *globals) *cobra.Command {
	var configs []string
	cmd := &cobra.Command{
		Use:   "alter NAME --config KEY=VALUE...",
		Short: "Set configs of an existing topic",
		Long: `Set topic configs (retention, cleanup policy, ...) on an existing topic.
Configs not named keep their values. An aggregate's events topic is its event
store and must keep every event: an aggregate runner refuses one that deletes
records, and tells you to run the first example.

As with create, every config must be a Kafka topic config with a value of
its type, or nothing is changed (exit 2).`,
		Example: `  recq topic alter todo.events --config retention.ms=-1 --config retention.bytes=-1 --config cleanup.policy=delete
  recq topic alter clicks --config retention.ms=86400000`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			cfgs, err := keyValues("config", configs)
			if err != nil {
				return err
			}
			if len(cfgs) == 0 {
				return usagef("nothing to alter: give at least one --config KEY=VALUE")
			}
			if err := checkTopicConfigs(cfgs); err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				if err := adm.SetTopicConfigs(ctx, a[0], cfgs); err != nil {
					if errors.Is(err, streams.ErrTopicNotFound) {
						return fmt.Errorf("topic %q does not exist (see: recq topic list)", a[0])
					}
					return err
				}
				info, err := adm.DescribeTopic(ctx, a[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "altered topic %s; retention: %s\n", a[0], info.Retention)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	return cmd
}

func newTopicDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a topic and all its records",
		Long:    `Delete a topic and all its records, at once and for good; there is no undo.`,
		Example: `  recq topic delete scratch`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
				if err := adm.DeleteTopic(ctx, a[0]); err != nil {
					if errors.Is(err, streams.ErrTopicNotFound) {
						return fmt.Errorf("topic %q does not exist (see: recq topic list)", a[0])
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", a[0])
				return nil
			})
		},
	}
}
