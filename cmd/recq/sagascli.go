package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/store"
)

// sagaSource says where `recq sagas` reads instances: a Redis saga store
// or a saga service's InspectHandler.
type sagaSource struct {
	redis, prefix, http string
}

func (s *sagaSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.redis, "redis", os.Getenv("RECQ_REDIS_URL"), "the saga store's Redis, as a URL (redis://host:port/db; env RECQ_REDIS_URL)")
	cmd.Flags().StringVar(&s.prefix, "key-prefix", store.DefaultKeyPrefix, "the saga store's key prefix")
	cmd.Flags().StringVar(&s.http, "http", "", "instead of Redis, a saga service that serves sagas.InspectHandler (a saga on memory stores), e.g. http://127.0.0.1:8090")
}

// open returns the reader and a function that releases it.
func (s *sagaSource) open(ctx context.Context, cmd *cobra.Command) (store.Reader, func(), error) {
	switch {
	case s.http != "" && cmd.Flags().Changed("redis"):
		return nil, nil, usagef("sagas: give --redis or --http, not both")
	case s.http != "":
		return sagas.NewInspectClient(s.http, nil), func() {}, nil
	case s.redis == "":
		return nil, nil, usagef("sagas: say where the instances are: --redis redis://HOST:PORT (the saga's Redis store; or RECQ_REDIS_URL) or --http URL (a saga service serving sagas.InspectHandler)")
	}
	opt, err := redis.ParseURL(s.redis)
	if err != nil {
		return nil, nil, usagef("sagas: --redis %q: %v (want redis://host:port/db)", s.redis, err)
	}
	// recq's own line says what failed; go-redis's dial retries would add
	// four more.
	redis.SetLogger(quietRedis{})
	opt.MaxRetries = 1
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("sagas: cannot reach Redis at %s: %w (start it, or fix --redis)", opt.Addr, err)
	}
	st, err := store.NewRedis(c, store.WithKeyPrefix(s.prefix))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return st, func() { c.Close() }, nil
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// read runs fn on the source's reader within the command's timeout.
func (s *sagaSource) read(cmd *cobra.Command, g *globals, fn func(context.Context, store.Reader) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	r, done, err := s.open(ctx, cmd)
	if err != nil {
		return err
	}
	defer done()
	return fn(ctx, r)
}

func newSagasCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sagas",
		Short: "Look into a saga's instances",
		Long: `A saga (package sagas) keeps one instance per association that started it
("order=O-17"): its state, its associations, its pending deadlines and the
events it handled. NAME is the saga's consumer group, <app>.<saga>.v<N>.

The instances are read from the saga's Redis store (--redis, or
RECQ_REDIS_URL), or, for a saga on memory stores, from its service over
HTTP (--http, a service that mounts sagas.InspectHandler).`,
		Example: `  recq sagas list shop.fulfilment.v1 --redis redis://127.0.0.1:6379
  recq sagas list shop.fulfilment.v1 --ended --association order=O-17 -o json
  recq sagas show shop.fulfilment.v1 order=O-17 --http http://127.0.0.1:8090`,
	}
	cmd.AddCommand(newSagasListCmd(g), newSagasShowCmd(g))
	return cmd
}

func newSagasListCmd(g *globals) *cobra.Command {
	var src sagaSource
	var assoc string
	var ended bool
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "list NAME [--association K=V] [--ended] [-o json]",
		Short: "List a saga's running (or ended) instances",
		Long: `List a saga's instances, running ones by default (--ended: the ended ones,
which the Redis store keeps for 7 days). --association finds the instance
an association leads to, by its id or through the association index.
-o json prints one JSON object per line.`,
		Example: `  recq sagas list shop.fulfilment.v1 --redis redis://127.0.0.1:6379
  recq sagas list shop.fulfilment.v1 --association payment=P-9 -o json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if assoc != "" && !strings.Contains(assoc, "=") {
				return usagef("sagas list: --association %q: want KEY=VALUE, e.g. order=O-17", assoc)
			}
			var ins []*store.Instance
			if err := src.read(cmd, g, func(ctx context.Context, r store.Reader) (err error) {
				ins, err = r.List(ctx, a[0], store.Filter{Association: assoc, Ended: ended})
				return err
			}); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == "json" {
				enc := json.NewEncoder(w)
				for _, in := range ins {
					if err := enc.Encode(in); err != nil {
						return err
					}
				}
				return nil
			}
			return render(w, out, nil, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tSTARTED\tUPDATED\tASSOCIATIONS\tDEADLINES\tHANDLED\tENDED")
				for _, in := range ins {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%v\n", in.ID, in.Started.Format(time.RFC3339), in.Updated.Format(time.RFC3339),
						strings.Join(in.Associations, ","), deadlinesSummary(in.Deadlines), len(in.History), in.Ended)
				}
				fmt.Fprintf(w, "%d instances\n", len(ins))
			})
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&assoc, "association", "", "only the instance this KEY=VALUE association leads to")
	cmd.Flags().BoolVar(&ended, "ended", false, "the ended instances instead of the running ones")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json (one object per line)")
	return cmd
}

// deadlinesSummary is how many are pending and when the next is due.
func deadlinesSummary(ds []store.Deadline) string {
	if len(ds) == 0 {
		return "-"
	}
	next := ds[0]
	for _, d := range ds {
		if d.Due.Before(next.Due) {
			next = d
		}
	}
	return fmt.Sprintf("%d (next %s %s)", len(ds), next.Name, next.Due.Format(time.RFC3339))
}

func newSagasShowCmd(g *globals) *cobra.Command {
	var src sagaSource
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "show NAME ID [-o json]",
		Short: "Show one instance: state, associations, deadlines, handled events",
		Example: `  recq sagas show shop.fulfilment.v1 order=O-17 --redis redis://127.0.0.1:6379
  recq sagas show shop.fulfilment.v1 order=O-17 -o json`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var in *store.Instance
			if err := src.read(cmd, g, func(ctx context.Context, r store.Reader) (err error) {
				in, err = r.Load(ctx, a[0], a[1])
				return err
			}); err != nil {
				return err
			}
			if in == nil {
				return fmt.Errorf("no instance %s in saga %s (list them with: recq sagas list %s)", a[1], a[0], a[0])
			}
			return render(cmd.OutOrStdout(), out, in, func(w io.Writer) { showInstance(w, in, time.Now()) })
		},
	}
	src.flags(cmd)
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func showInstance(w io.Writer, in *store.Instance, now time.Time) {
	status := "running"
	if in.Ended {
		status = "ended"
	}
	fmt.Fprintf(w, "instance\t%s (%s)\npartition\t%d\nstarted\t%s\nupdated\t%s\n", in.ID, status, in.Partition,
		in.Started.Format(time.RFC3339Nano), in.Updated.Format(time.RFC3339Nano))
	if len(in.State) > 0 {
		var v any
		state := string(in.State)
		if json.Unmarshal(in.State, &v) == nil {
			b, _ := json.MarshalIndent(v, "\t", "  ")
			state = string(b)
		}
		fmt.Fprintf(w, "state\t%s\n", state)
	}
	fmt.Fprintf(w, "associations\t%s\n", dash(strings.Join(in.Associations, ", ")))
	fmt.Fprintln(w, "deadlines")
	if len(in.Deadlines) == 0 {
		fmt.Fprintln(w, "\t-")
	}
	for _, d := range in.Deadlines {
		when := "overdue by " + now.Sub(d.Due).Round(time.Millisecond).String()
		if d.Due.After(now) {
			when = "in " + d.Due.Sub(now).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "\t%s\tdue %s (%s)\t%s\n", d.Name, d.Due.Format(time.RFC3339Nano), when, d.ID)
	}
	fmt.Fprintf(w, "handled (last %d, oldest first)\n", len(in.History))
	for _, h := range in.History {
		fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\n", h.At.Format(time.RFC3339Nano), h.Type, h.ID, dash(h.Source))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
