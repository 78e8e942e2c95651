package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

const defaultBrokers = "localhost:9092"

// usageError marks a mistake in how recq was called (exit code 2), as
// opposed to a failure while doing the work (exit code 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	brokers  string
	registry string
	timeout  time.Duration
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "recq",
		Short: "Event sourcing and event streaming on Kafka",
		Long: `recq runs event-sourced, event-driven systems on Kafka: topics are the event
store and the message bus. This tool runs the embedded dev platform and
manages topics, records and consumer groups.

Start a local platform in one terminal, then use it from another:

  recq dev
  recq topic create orders --partitions 3
  echo '{"id":1}' | recq produce orders --key order-1 --format json
  recq consume orders --from beginning

The broker comes from --brokers, else $RECQ_BROKERS, else ` + defaultBrokers + `.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	brokers := os.Getenv("RECQ_BROKERS")
	if brokers == "" {
		brokers = defaultBrokers
	}
	root.PersistentFlags().StringVar(&g.brokers, "brokers", brokers, "comma-separated Kafka bootstrap brokers (env RECQ_BROKERS)")
	registry := os.Getenv("RECQ_REGISTRY")
	if registry == "" {
		registry = defaultRegistry
	}
	root.PersistentFlags().StringVar(&g.registry, "registry", registry, "schema registry URL (env RECQ_REGISTRY)")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", 10*time.Second, "how long a request to Kafka or the registry (and recq send's wait for a reply) may take before recq gives up")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// `recq topic craete orders --partitions 3`: the flag is unknown to
		// `topic` only because the command before it is.
		if a := cmd.Flags().Args(); cmd.HasSubCommands() && len(a) > 0 {
			return unknownCommand(cmd, a[0])
		}
		return usageError{err}
	})
	root.AddCommand(newDevCmd(), newTopicCmd(g), newProduceCmd(g), newConsumeCmd(g), newSendCmd(g), newGroupsCmd(g),
		newSchemaCmd(g), newRegistryCmd(g), newDLQCmd(g), newSagasCmd(g), newTraceCmd(g), newReplayCmd(g))
	// cobra adds these when it executes; adding them now puts them under
	// the same rules as the rest of the tree (examples, unknown commands).
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  recq help topic create"
			// cobra prints "Unknown help topic" and exits 0.
			show := c.Run
			c.Run = nil
			c.RunE = func(c *cobra.Command, a []string) error {
				if cmd, rest, err := c.Root().Find(a); err == nil && cmd.HasSubCommands() && len(rest) > 0 {
					return unknownCommand(cmd, rest[0])
				}
				show(c, a)
				return nil
			}
		case "completion":
			for _, sh := range c.Commands() {
				sh.Example = fmt.Sprintf("  source <(recq completion %s)   # see the help above for installing it for good", sh.Name())
			}
		}
	}
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// (recq, recq topic, ...) refuse a word that names none of them, as a
// usage error. cobra itself prints the help and exits 0 for `recq topic
// craete`, since a group has nothing to run.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			return nil
		}
		return unknownCommand(cmd, a[0])
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	if !cmd.HasParent() {
		// Runnable only to refuse unknown words: the usage shows only
		// "recq topic [command]", not "recq topic [flags]".
		cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	}
}

// unknownCommand is the usage error for a subcommand that does not exist.
func unknownCommand(cmd *cobra.Command, name string) error {
	path := cmd.CommandPath()
	msg := fmt.Sprintf("unknown command %q for %q (see %s --help)", name, path, path)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", strings.Join(s, `" or "`))
	}
	return usageError{errors.New(msg)}
}

// plural is "1 record", "2 records".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// args wraps a cobra argument check so its complaint is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			name := strings.TrimPrefix(cmd.CommandPath(), "recq ")
			return usagef("%s: %v (see 'recq %s --help')", name, err, name)
		}
		return nil
	}
}

func (g *globals) brokerList() []string {
	var out []string
	for _, b := range strings.Split(g.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// connect dials --brokers, turning "no broker answers" into the advice a
// CLI user needs.
func (g *globals) connect(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	brokers := g.brokerList()
	if len(brokers) == 0 {
		return nil, usagef("--brokers is empty")
	}
	cl, err := streams.Dial(ctx, brokers, opts...)
	switch {
	case err == nil:
		return cl, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, streams.ErrBrokerUnreachable):
		return nil, fmt.Errorf("cannot reach Kafka at %s within %v (is 'recq dev' running? set --brokers or RECQ_BROKERS): %v", g.brokers, streams.DefaultDialTimeout, err)
	default:
		return nil, err
	}
}

// admin connects and returns an Admin with a request deadline.
func (g *globals) admin(ctx context.Context) (*streams.Admin, context.Context, func(), error) {
	cl, err := g.connect(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	return streams.NewAdmin(cl), ctx, func() { cancel(); cl.Close() }, nil
}

// withAdmin runs fn with an Admin whose requests share --timeout.
func (g *globals) withAdmin(cmd *cobra.Command, fn func(ctx context.Context, adm *streams.Admin) error) error {
	adm, ctx, done, err := g.admin(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	return fn(ctx, adm)
}

// requireTopics fails with a clear message when a topic does not exist.
func requireTopics(ctx context.Context, adm *streams.Admin, topics ...string) error {
	for _, t := range topics {
		if _, err := adm.DescribeTopic(ctx, t); err != nil {
			if errors.Is(err, streams.ErrTopicNotFound) {
				return fmt.Errorf("topic %q does not exist (create it with: recq topic create %s --partitions N)", t, t)
			}
			return err
		}
	}
	return nil
}

// keyValues parses repeated k=v flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--%s %q: want key=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}
