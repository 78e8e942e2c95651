package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

func newConsumeCmd(g *globals) *cobra.Command {
	var (
		group  string
		from   string
		max    int
		follow bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read records from a topic as JSON lines",
		Long: `Read records from a topic and print one JSON object per record:
  {"topic","partition","offset","timestamp","key","headers","value"}
Keys and values that are JSON are embedded as JSON, other UTF-8 as strings,
anything else as base64 (with "key_encoding"/"value_encoding": "base64").
When a schema registry is configured (--registry or $RECQ_REGISTRY),
Confluent-framed Avro values are decoded to JSON with their writer's schema;
one that cannot be decoded (unknown schema id, corrupt bytes) is shown as
base64 with "value_error" saying why.
With --format raw only the values are printed, one per line.

Without --follow, recq consume stops at the end the topic had when it
started. With --group it reads as a member of that consumer group, resumes
from the group's committed offsets (--from applies to partitions without
one) and commits what it printed. Only committed transactions are shown.

With --follow, a broker that goes away (a restart, a network cut) is
waited for: recq consume says so on stderr, once, and goes on reading when
the broker is back; a group member rejoins its group. Ctrl-C stops it.`,
		Example: `  recq consume orders --from beginning
  recq consume orders --from 2026-01-02T15:04:05Z --max 10
  recq consume orders --group audit --follow`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if format != "raw" && format != "json" {
				return usagef("--format: want json or raw, got %q", format)
			}
			start, err := streams.ParseStartAt(from)
			if err != nil {
				return usagef("--from: %v", err)
			}
			if max < 0 {
				return usagef("--max must not be negative")
			}
			topic := a[0]
			adm, ctx, done, err := g.admin(cmd.Context())
			if err != nil {
				return err
			}
			err = requireTopics(ctx, adm, topic)
			done()
			if err != nil {
				return err
			}
			var decode func(context.Context, []byte) ([]byte, error)
			if cmd.Flags().Changed("registry") || os.Getenv("RECQ_REGISTRY") != "" {
				cl, err := g.registryClient(cmd.Context())
				if err != nil {
					return err
				}
				serde, err := schema.NewSerde(cl)
				if err != nil {
					return err
				}
				decode = func(ctx context.Context, b []byte) ([]byte, error) { return serde.DecodeJSON(ctx, b, false) }
			}
			opts := []streams.ReaderOption{streams.WithTopics(topic), streams.WithFrom(start)}
			if group != "" {
				opts = append(opts, streams.WithGroup(group))
			}
			if !follow {
				opts = append(opts, streams.WithStopAtEnd())
			}
			rd, err := streams.NewReader(g.brokerList(), opts...)
			if err != nil {
				return err
			}
			defer rd.Close()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			enc := json.NewEncoder(out)
			printed := 0
			cm := &committer{rd: rd, pending: map[topicPartition]*kgo.Record{}}
			defer cm.flush(cmd.ErrOrStderr()) // a Ctrl-C still commits what was printed
			wait := outage{w: cmd.ErrOrStderr()}
			for max == 0 || printed < max {
				recs, err := rd.Poll(cmd.Context())
				if max > 0 && len(recs) > max-printed {
					recs = recs[:max-printed]
				}
				for _, r := range recs {
					if format == "raw" {
						out.Write(r.Value)
						out.WriteByte('\n')
					} else if err := enc.Encode(jsonRecord(cmd.Context(), r, decode)); err != nil {
						return err
					}
				}
				printed += len(recs)
				if err := out.Flush(); err != nil {
					return err // stdout closed: stop without committing what was not shown
				}
				if cerr := cm.commit(recs); cerr != nil {
					if !follow || fatal(cerr) {
						clear(cm.pending)
						return cerr
					}
					wait.failed(cmd.Context(), cerr) // committed with the next records
				}
				switch {
				case errors.Is(err, streams.ErrEndReached), errors.Is(err, context.Canceled):
					return nil
				case err != nil && follow && !fatal(err):
					wait.failed(cmd.Context(), err)
				case err != nil:
					return err
				case len(recs) > 0:
					wait.over()
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&group, "group", "g", "", "read as a member of this consumer group and commit offsets")
	cmd.Flags().StringVar(&from, "from", "beginning", "where to start: beginning, end, an offset, or an RFC 3339 time")
	cmd.Flags().IntVarP(&max, "max", "n", 0, "stop after this many records (0: no limit)")
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "keep waiting for new records until Ctrl-C")
	cmd.Flags().StringVarP(&format, "format", "f", "json", "output: json (one object per record) or raw (values only)")
	return cmd
}

type topicPartition struct {
	topic     string
	partition int32
}

// committer commits what consume printed. A commit that failed (--follow
// through a broker restart) is not lost: its records are committed with
// the next ones, or when consume stops.
type committer struct {
	rd      *streams.Reader
	pending map[topicPartition]*kgo.Record // the last record printed per partition, not yet committed
}

// commit commits recs and whatever is pending, with its own short
// deadline, so a Ctrl-C that ended the poll still records what was printed.
func (c *committer) commit(recs []*kgo.Record) error {
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if p := c.pending[tp]; p == nil || p.Offset < r.Offset {
			c.pending[tp] = r
		}
	}
	if len(c.pending) == 0 {
		return nil
	}
	last := make([]*kgo.Record, 0, len(c.pending))
	for _, r := range c.pending {
		last = append(last, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.rd.Commit(ctx, last...); err != nil {
		return err
	}
	clear(c.pending)
	return nil
}

// flush commits what is pending when consume stops.
func (c *committer) flush(w io.Writer) {
	if err := c.commit(nil); err != nil {
		fmt.Fprintf(w, "recq: consume: the last records printed were not committed (the group reads them again): %v\n", err)
	}
}

// fatal reports an error that waiting does not cure: permissions, a bad
// group name, a closed client.
func fatal(err error) bool {
	for _, e := range []error{kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.InvalidGroupID, kerr.SaslAuthenticationFailed, kgo.ErrClientClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// outage is a failure --follow waits out: logged once when it starts (or
// changes), and once when records flow again; polls back off meanwhile.
type outage struct {
	w     io.Writer
	last  string
	delay time.Duration
}

func (o *outage) failed(ctx context.Context, err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if msg != o.last {
		fmt.Fprintf(o.w, "recq: consume: %s (waiting and retrying; Ctrl-C to stop)\n", msg)
		o.last = msg
	}
	o.delay = min(max(2*o.delay, 100*time.Millisecond), 2*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(o.delay):
	}
}

func (o *outage) over() {
	if o.last != "" {
		fmt.Fprintln(o.w, "recq: consume: reading again")
	}
	o.last, o.delay = "", 0
}

// framed reports whether b looks like Confluent wire format: magic byte 0
// and a 4-byte schema id.
func framed(b []byte) bool { return len(b) >= 5 && b[0] == 0 }

type recordJSON struct {
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	Timestamp     string            `json:"timestamp"`
	Key           json.RawMessage   `json:"key"`
	KeyEncoding   string            `json:"key_encoding,omitempty"`
	Headers       map[string]string `json:"headers"`
	Value         json.RawMessage   `json:"value"`
	ValueEncoding string            `json:"value_encoding,omitempty"`
	ValueError    string            `json:"value_error,omitempty"`
}

func jsonRecord(ctx context.Context, r *kgo.Record, decode func(context.Context, []byte) ([]byte, error)) recordJSON {
	out := recordJSON{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano),
		Headers:   make(map[string]string, len(r.Headers)),
	}
	out.Key, out.KeyEncoding = embed(r.Key)
	out.Value, out.ValueEncoding = embed(r.Value)
	if decode != nil && framed(r.Value) {
		if v, err := decode(ctx, r.Value); err != nil {
			out.ValueError = registryErr(err).Error()
		} else {
			out.Value, out.ValueEncoding = v, ""
		}
	}
	for _, h := range r.Headers {
		out.Headers[h.Key] = string(h.Value)
	}
	return out
}

// embed returns b as JSON: itself when it is JSON, a string when it is UTF-8
// text, base64 otherwise (with the encoding's name).
func embed(b []byte) (json.RawMessage, string) {
	switch {
	case b == nil:
		return json.RawMessage("null"), ""
	case json.Valid(b):
		return b, ""
	case utf8.Valid(b):
		s, _ := json.Marshal(string(b))
		return s, ""
	default:
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
		return s, "base64"
	}
}
