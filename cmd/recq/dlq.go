package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/schema"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, redrive and discard a consumer group's dead events",
		Long: `Every recq consumer group has a dead event queue, the topic <group>.dlq:
events its handlers could not handle (a permanent error after the retry
policy's attempts, a panic, a payload that does not decode, a record
without a recq type), and events parked behind a dead event of their key so
that a read model never applies a key's events out of order.

Each dead event keeps the original record (key, value, headers) and says why
it is there in recq-dlq-* headers. Its id is where the original sits:
TOPIC/PARTITION/OFFSET. Decisions about it (redrive, discard) go to
<group>.dlq.actions with who took them, why and when.

  pending    dead, waiting for a decision (list shows these by default)
  redriving  republished to <group>.retry; the group has not handled it yet
  redriven   handled after a redrive
  discarded  dropped on purpose

A redriven event that fails again comes back as pending, one generation
on, its attempts counted on.`,
		Example: `  recq dlq list todo.stats.v1
  recq dlq show todo.stats.v1 todo.events/3/1207
  recq dlq redrive todo.stats.v1 --key list-42
  recq dlq discard todo.stats.v1 todo.events/0/17 --reason "test data"`,
	}
	cmd.AddCommand(newDLQListCmd(g), newDLQShowCmd(g), newDLQRedriveCmd(g), newDLQDiscardCmd(g))
	return cmd
}

// onQueue runs fn, a deadletter call on group's queue, with the CLI's
// error messages: an unreachable broker, a group without a queue.
func (g *globals) onQueue(ctx context.Context, group string, fn func(brokers []string) error) error {
	cl, err := g.connect(ctx)
	if err != nil {
		return err
	}
	cl.Close()
	if err := fn(g.brokerList()); errors.Is(err, deadletter.ErrNoQueue) {
		return fmt.Errorf("consumer group %q has no dead event queue (%s): is the name right? (see: recq groups list)", group, deadletter.Topic(group))
	} else if err != nil {
		return err
	}
	return nil
}

// loadDLQ reads group's queue.
func (g *globals) loadDLQ(ctx context.Context, group string) (idx *deadletter.Index, err error) {
	err = g.onQueue(ctx, group, func(brokers []string) (err error) {
		idx, err = deadletter.Load(ctx, brokers, group)
		return err
	})
	return idx, err
}

// dlqItem is a dead event as the CLI prints it.
type dlqItem struct {
	ID           string              `json:"id"`
	Status       deadletter.Status   `json:"status"`
	Reason       deadletter.Reason   `json:"reason"`
	Kind         string              `json:"kind,omitempty"`
	Error        string              `json:"error,omitempty"`
	Attempts     int                 `json:"attempts"`
	Generation   int                 `json:"generation"`
	Key          string              `json:"key"`
	Handler      string              `json:"handler,omitempty"`
	ParkedBehind string              `json:"parked_behind,omitempty"`
	FirstFailure time.Time           `json:"first_failure"`
	LastFailure  time.Time           `json:"last_failure"`
	Stack        string              `json:"stack,omitempty"`
	Record       *recordJSON         `json:"record,omitempty"`
	Actions      []deadletter.Action `json:"actions,omitempty"`
}

func viewItem(it deadletter.Item) dlqItem {
	e := it.Entry
	v := dlqItem{ID: e.ID, Status: it.Status, Reason: e.Reason, Error: e.Error, Attempts: e.Attempts,
		Generation: e.Generation, Key: string(e.Key), Handler: e.Handler, ParkedBehind: e.ParkedBehind,
		FirstFailure: e.FirstFailure, LastFailure: e.LastFailure, Actions: it.Actions}
	if e.Kind != 0 {
		v.Kind = e.Kind.String()
	}
	return v
}

func newDLQListCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	var key, status string
	cmd := &cobra.Command{
		Use:   "list GROUP [--key K] [--status pending|redriving|redriven|discarded|all]",
		Short: "List a group's dead events (pending ones by default)",
		Long: `List the dead events of a consumer group in queue order (a key's events in
the order they happened). By default only pending ones: those waiting for a
decision. GEN counts how often an event died: above 1, it failed again after
a redrive (ATTEMPTS counts every failed handling). -o json prints one JSON
object per line.`,
		Example: `  recq dlq list todo.stats.v1
  recq dlq list todo.stats.v1 --key list-42 --status all -o json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			f := deadletter.Filter{Key: key}
			if status != "all" {
				st, err := deadletter.ParseStatus(status)
				if err != nil {
					return usagef("dlq list: --status: %v", err)
				}
				f.Status = st
			}
			idx, err := g.loadDLQ(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			items := idx.List(f)
			w := cmd.OutOrStdout()
			if out == "json" {
				enc := json.NewEncoder(w)
				for _, it := range items {
					v := viewItem(it)
					v.Actions = nil
					if err := enc.Encode(v); err != nil {
						return err
					}
				}
				return nil
			}
			return render(w, out, nil, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tSTATUS\tREASON\tATTEMPTS\tGEN\tKEY\tLAST FAILURE\tERROR")
				for _, it := range items {
					v := viewItem(it)
					msg := v.Error
					if v.Reason == deadletter.ReasonParked {
						msg = "behind " + v.ParkedBehind
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", v.ID, v.Status, v.Reason, v.Attempts, v.Generation, v.Key,
						v.LastFailure.Format(time.RFC3339), firstLine(msg, 80))
				}
				fmt.Fprintf(w, "%d dead events\n", len(items))
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "only the events of this key")
	cmd.Flags().StringVar(&status, "status", "pending", "pending, redriving, redriven, discarded, or all")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json (one object per line)")
	return cmd
}

// firstLine shortens s to its first line and at most n runes.
func firstLine(s string, n int) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		s, cut = string(r[:n]), true
	}
	if cut {
		s += "…"
	}
	return s
}

func newDLQShowCmd(g *globals) *cobra.Command {
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "show GROUP ID",
		Short: "Show one dead event: its payload (decoded through the registry), error, stack and history",
		Long: `Show one dead event by its id, TOPIC/PARTITION/OFFSET (the place of the
original record, as recq dlq list prints it): its status, why it died, its
attempts, key, handler, error and stack, the original record's headers and
value (Avro decoded to JSON through the registry when it answers), and
every decision taken about it.`,
		Example: `  recq dlq show todo.stats.v1 todo.events/3/1207
  recq dlq show todo.stats.v1 todo.events/3/1207 -o json | jq .record.value`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if _, _, _, err := deadletter.ParseID(a[1]); err != nil {
				return usagef("dlq show: %v", err)
			}
			ctx := cmd.Context()
			idx, err := g.loadDLQ(ctx, a[0])
			if err != nil {
				return err
			}
			it, ok := idx.Get(a[1])
			if !ok {
				return fmt.Errorf("consumer group %q has no dead event %s (see: recq dlq list %s --status all)", a[0], a[1], a[0])
			}
			v := viewItem(it)
			v.Stack = it.Entry.Stack
			var decode func(context.Context, []byte) ([]byte, error)
			if rc, err := g.registryClient(ctx); err == nil {
				if serde, err := schema.NewSerde(rc); err == nil {
					decode = func(ctx context.Context, b []byte) ([]byte, error) { return serde.DecodeJSON(ctx, b, false) }
				}
			}
			e := it.Entry
			rec := jsonRecord(ctx, &kgo.Record{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset,
				Timestamp: e.FirstFailure, Key: e.Key, Value: e.Value, Headers: e.Headers}, decode)
			rec.Timestamp = ""
			v.Record = &rec
			return render(cmd.OutOrStdout(), out, v, func(w io.Writer) {
				fmt.Fprintf(w, "id\t%s\nstatus\t%s\nreason\t%s\n", v.ID, v.Status, v.Reason)
				if v.Kind != "" {
					fmt.Fprintf(w, "kind\t%s\n", v.Kind)
				}
				fmt.Fprintf(w, "attempts\t%d (generation %d)\nkey\t%s\nhandler\t%s\nfirst failure\t%s\nlast failure\t%s\n",
					v.Attempts, v.Generation, v.Key, v.Handler, v.FirstFailure.Format(time.RFC3339Nano), v.LastFailure.Format(time.RFC3339Nano))
				if v.ParkedBehind != "" {
					fmt.Fprintf(w, "parked behind\t%s\n", v.ParkedBehind)
				}
				fmt.Fprintf(w, "error\t%s\n", v.Error)
				for k, h := range rec.Headers {
					fmt.Fprintf(w, "header %s\t%s\n", k, h)
				}
				fmt.Fprintf(w, "value\t%s\n", rec.Value)
				if rec.ValueError != "" {
					fmt.Fprintf(w, "value not decoded\t%s\n", rec.ValueError)
				}
				for _, act := range v.Actions {
					fmt.Fprintf(w, "action\t%s %s by %s: %s (generation %d)\n", act.At.Format(time.RFC3339), act.Action, act.Who, act.Why, act.Generation)
				}
				if v.Stack != "" {
					fmt.Fprintf(w, "stack\t\n%s\n", v.Stack)
				}
			})
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

// decision is what redrive and discard share: which events (IDs, --key
// or --all), who decides and why, and how to print the outcome.
type decision struct {
	key      string
	all      bool
	who, why string
	out      outputFlag
}

func (d *decision) flags(cmd *cobra.Command, whyHelp string) {
	d.out = "table"
	cmd.Flags().StringVar(&d.key, "key", "", "every pending event of this key, in order")
	cmd.Flags().BoolVar(&d.all, "all", false, "every pending event")
	cmd.Flags().StringVar(&d.who, "who", defaultWho(), "who takes the decision (recorded)")
	cmd.Flags().StringVar(&d.why, "reason", "", whyHelp)
	cmd.Flags().VarP(&d.out, "output", "o", "output format: table or json")
}

// take takes the decision with act on the events of group a[0] named by
// a[1:] (IDs) or the flags; the selection is resolved against the queue as
// act reads it, so it cannot go stale in between.
func (d *decision) take(cmd *cobra.Command, g *globals, name string, a []string,
	act func(context.Context, []string, string, deadletter.Selection, deadletter.Decision, ...kgo.Opt) ([]deadletter.Action, error),
) ([]deadletter.Action, error) {
	sel := deadletter.Selection{IDs: a[1:], Key: d.key, All: d.all}
	n := 0
	for _, set := range []bool{len(sel.IDs) > 0, sel.Key != "", sel.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("dlq %s: name the events: IDs, --key K or --all (one of them)", name)
	}
	for _, id := range sel.IDs {
		if _, _, _, err := deadletter.ParseID(id); err != nil {
			return nil, usagef("dlq %s: %v", name, err)
		}
	}
	ctx := cmd.Context()
	var acts []deadletter.Action
	err := g.onQueue(ctx, a[0], func(brokers []string) (err error) {
		acts, err = act(ctx, brokers, a[0], sel, deadletter.Decision{Who: d.who, Why: d.why})
		return err
	})
	return acts, err
}

func defaultWho() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func printActions(w io.Writer, out outputFlag, acts []deadletter.Action, done string) error {
	return render(w, out, acts, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tACTION\tGENERATION\tRETRY")
		for _, a := range acts {
			retry := "-"
			if a.Action == deadletter.ActionRedrive {
				retry = fmt.Sprintf("%d@%d", a.RetryPartition, a.RetryOffset)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", a.ID, a.Action, a.Generation, retry)
		}
		fmt.Fprintf(w, "%s %s\n", plural(len(acts), "event"), done)
	})
}

func newDLQRedriveCmd(g *globals) *cobra.Command {
	var d decision
	cmd := &cobra.Command{
		Use:   "redrive GROUP (ID...|--key K|--all) [--reason R]",
		Short: "Send pending dead events back to their group, in order",
		Long: `Republish pending dead events to <group>.retry, which only that group
consumes, in queue order (a key's events in the order they happened), and
record the decision, in one Kafka transaction. The group handles them like
new events: success makes them redriven; a new failure brings them back as
pending with their attempts counted on. Events parked behind a dead event of
their key wait until it is handled; then the group releases them itself, in
order (recorded as redrives by the consumer). --key redrives them all now.

An aggregate runner's dead commands cannot be redriven: their senders were
answered "undecodable" and send fixed commands; discard them.`,
		Example: `  recq dlq redrive todo.stats.v1 --key list-42 --reason "fixed in v1.4.2"
  recq dlq redrive todo.stats.v1 todo.events/3/1207 todo.events/3/1210
  recq dlq redrive todo.stats.v1 --all`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			acts, err := d.take(cmd, g, "redrive", a, deadletter.Redrive)
			if err != nil {
				return err
			}
			if err := printActions(cmd.OutOrStdout(), d.out, acts, "redriven to "+deadletter.RetryTopic(a[0])); err != nil {
				return err
			}
			if idx, err := g.loadDLQ(cmd.Context(), a[0]); err == nil {
				warnParked(cmd.ErrOrStderr(), idx, acts)
			}
			return nil
		},
	}
	d.flags(cmd, "why (recorded)")
	return cmd
}

// warnParked says what stays pending of the keys redriven: parked events
// the group releases once these are handled, and other dead events, which
// need a decision of their own.
func warnParked(w io.Writer, idx *deadletter.Index, acts []deadletter.Action) {
	redriven := map[string]bool{}
	keys := map[string]bool{}
	for _, a := range acts {
		redriven[a.ID] = true
		if it, ok := idx.Get(a.ID); ok && len(it.Entry.Key) > 0 {
			keys[string(it.Entry.Key)] = true
		}
	}
	for k := range keys {
		parked, other := 0, 0
		for _, it := range idx.List(deadletter.Filter{Key: k, Status: deadletter.StatusPending}) {
			switch {
			case redriven[it.Entry.ID]:
			case it.Entry.Reason == deadletter.ReasonParked:
				parked++
			default:
				other++
			}
		}
		if parked > 0 {
			fmt.Fprintf(w, "note: key %s has %d events parked behind these; the group releases them once these are handled\n", k, parked)
		}
		if other > 0 {
			fmt.Fprintf(w, "note: key %s has %d more dead events that were not redriven (recq dlq list --key %s)\n", k, other, k)
		}
	}
}

func newDLQDiscardCmd(g *globals) *cobra.Command {
	var d decision
	cmd := &cobra.Command{
		Use:   "discard GROUP (ID...|--key K|--all) --reason R",
		Short: "Drop pending dead events for good, saying why",
		Long: `Record that pending dead events will not be handled. They stay in the queue
for the record, as discarded. Discarding a key's dead event lets the events
parked behind it through: the group releases them itself, in order. To drop
those too, discard the key's events together with --key.`,
		Example: `  recq dlq discard todo.stats.v1 todo.events/0/17 --reason "test data"
  recq dlq discard todo.stats.v1 --key list-42 --reason "list deleted upstream"`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if d.why == "" {
				return usagef("dlq discard: --reason is required: it is recorded with the decision")
			}
			acts, err := d.take(cmd, g, "discard", a, deadletter.Discard)
			if err != nil {
				return err
			}
			return printActions(cmd.OutOrStdout(), d.out, acts, "discarded")
		},
	}
	d.flags(cmd, "why (required; recorded)")
	return cmd
}
