package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

func newReplayCmd(g *globals) *cobra.Command {
	var (
		from, to, fromOffset, toOffset string
		keys, types, headers           []string
		where, out, toTopic, rate      string
		strict, follow                 bool
		every                          time.Duration
		txnBatch                       int
	)
	cmd := &cobra.Command{
		Use:   "replay TOPIC...",
		Short: "Export a time or offset window of topics, decoded, to JSON lines or CSV",
		Long: `Read topics over a window and write every committed record, decoded
through the schema registry, as JSON lines (stdout or --out x.jsonl) or
CSV (--out x.csv). Aborted transactions never appear.

The window is from inclusive to exclusive: --from T starts at the first
record whose timestamp is at or after T, --to T stops before the first one
at or after T (found with Kafka's time index, per partition). A time is
RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, midnight UTC), epoch
milliseconds, now, or a duration from now (-24h, -7d, -1d12h).
--from-offset and --to-offset take an offset for every partition, or
partition=offset pairs (0=120,2=300). Without --to, the replay stops at the
end each partition had when it started; ends are resolved once, so a
closed window gives the same output, byte for byte, every time. Records
come partition by partition: topics in the order given, partitions
ascending, offsets ascending. --follow keeps reading new records (stdout
only) until Ctrl-C.

Filters (all must match): --key K (any of several), --type NAME (the
payload's full name, any of several), --header K=V (every one), and
--where, comparisons of payload fields joined by "and":
  amount>100   status=="open"   customer.tier!='gold'   refunded==null
A missing field is null; a number compared with a string never matches.

JSON lines carry topic, partition, offset, timestamp, key, the envelope
(type, id, correlation_id, causation_id, aggregate_id, aggregate_version),
the other headers, and the value. CSV has those (no other headers) as the
first columns, then the payload's fields flattened (nested ones dotted,
arrays as JSON), one header row; records of several payload types go to
one file per type (out.csv → out.<type>.csv). Files are written under a
temporary name and renamed at the end: a failed or interrupted replay
leaves nothing behind.

A record that does not decode is skipped and counted (the summary names
the first few); with --strict it stops the replay. Progress goes to stderr
every --progress (rewritten in place on a terminal), and a summary at the
end. Plain JSON values (not Confluent-framed) are written as they are.

--to-topic T publishes the matching records, as read (key, value, headers,
timestamp), to the existing topic T instead: each to the partition of its
number when T has it, else by its key, so every source partition's order
is kept; headers recq-replay-topic, -partition, -offset and -time (ms) say
where each was first written. It feeds a new projector or a test
environment. --txn-batch N makes every N records one transaction (a
read-committed reader sees whole batches); a failure aborts the open batch
and keeps the ones committed before. --rate N holds it to N records a
second.`,
		Example: `  recq replay orders --from -24h > last-day.jsonl
  recq replay orders payments --from 2026-01-01 --to 2026-02-01 --out january.csv
  recq replay orders --from-offset 0=1200 --to-offset 0=1300 --type shop.OrderPlaced
  recq replay orders --where 'amount>100 and status=="open"' --out big-open.jsonl
  recq replay orders --from 2026-01-01 --to-topic orders.replayed --txn-batch 1000 --rate 5000`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, topics []string) error {
			now := time.Now()
			var w window
			w.follow = follow
			if from != "" && fromOffset != "" {
				return usagef("--from and --from-offset both say where to start: give one")
			}
			if to != "" && toOffset != "" {
				return usagef("--to and --to-offset both say where to stop: give one")
			}
			for _, tf := range []struct {
				flag, s string
				into    **time.Time
			}{{"from", from, &w.from}, {"to", to, &w.to}} {
				if tf.s != "" {
					t, err := parseReplayTime(tf.flag, tf.s, now)
					if err != nil {
						return err
					}
					*tf.into = &t
				}
			}
			for _, of := range []struct {
				flag, s string
				into    **offsetBound
			}{{"from-offset", fromOffset, &w.fromOffset}, {"to-offset", toOffset, &w.toOffset}} {
				if of.s != "" {
					b, err := parseOffsetBound(of.flag, of.s)
					if err != nil {
						return err
					}
					*of.into = &b
				}
			}
			if err := w.check(); err != nil {
				return err
			}
			f := replayFilter{keys: keys, types: types}
			hs, err := keyValues("header", headers)
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(hs)) {
				f.headers = append(f.headers, [2]string{k, hs[k]})
			}
			if where != "" {
				if f.where, err = parseWhere(where); err != nil {
					return err
				}
			}
			if follow && out != "" && out != "-" {
				return usagef("--follow writes to stdout only: a file is renamed into place when the replay ends, and a followed one never does")
			}
			if every <= 0 {
				return usagef("--progress must be positive")
			}
			dest, err := parseDestination(topics, toTopic, out, follow, txnBatch, rate)
			if err != nil {
				return err
			}
			return g.replay(cmd, topics, w, f, out, dest, strict, every)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "start at the first record at or after this time (default: the beginning)")
	fl.StringVar(&to, "to", "", "stop before the first record at or after this time (default: the end at the start)")
	fl.StringVar(&fromOffset, "from-offset", "", "start at this offset, or partition=offset pairs (0=120,2=300)")
	fl.StringVar(&toOffset, "to-offset", "", "stop before this offset, or partition=offset pairs")
	fl.StringArrayVar(&keys, "key", nil, "only records with this key (repeat for any of several)")
	fl.StringArrayVar(&types, "type", nil, "only records of this payload type, e.g. shop.OrderPlaced (repeat for any of several)")
	fl.StringArrayVar(&headers, "header", nil, "only records with header K=V (repeat: all must match)")
	fl.StringVar(&where, "where", "", `only records whose payload satisfies this, e.g. 'amount>100 and status=="open"'`)
	fl.StringVar(&out, "out", "", "write to this file (.jsonl or .csv) instead of stdout")
	fl.BoolVar(&strict, "strict", false, "stop at a record that does not decode instead of skipping it")
	fl.BoolVarP(&follow, "follow", "F", false, "keep reading new records until Ctrl-C (stdout only)")
	fl.DurationVar(&every, "progress", 5*time.Second, "how often to report progress on stderr")
	fl.StringVar(&toTopic, "to-topic", "", "publish the records to this existing topic instead of writing them out")
	fl.IntVar(&txnBatch, "txn-batch", 0, "with --to-topic: this many records per transaction (0: no transactions)")
	fl.StringVar(&rate, "rate", "", "with --to-topic: at most this many records a second (e.g. 5000 or 5000/s)")
	return cmd
}

// replayFilter is the --key, --type, --header and --where filters.
type replayFilter struct {
	keys, types []string
	headers     [][2]string
	where       predicate
}

func (f replayFilter) match(r *replayed) (bool, error) {
	if len(f.keys) > 0 && !slices.Contains(f.keys, string(r.Key)) {
		return false, nil
	}
	if len(f.types) > 0 && !slices.Contains(f.types, r.typ) {
		return false, nil
	}
	for _, h := range f.headers {
		if v, ok := streams.Header(r.Raw, h[0]); !ok || v != h[1] {
			return false, nil
		}
	}
	if f.where == nil {
		return true, nil
	}
	m, err := r.Value.Map()
	if err != nil {
		return false, err
	}
	return f.where.match(m), nil
}

// replayStats is what the summary reports.
type replayStats struct {
	read, matched, written, skipped int
	reasons                         []string // the first few skipped records, why
}

const skipReasons = 3

func (g *globals) replay(cmd *cobra.Command, topics []string, w window, f replayFilter, out string, dest destination, strict bool, every time.Duration) error {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	begun := time.Now()
	adm, actx, done, err := g.admin(ctx)
	if err != nil {
		return err
	}
	err = requireTopics(actx, adm, topics...)
	var parts int
	if err == nil && dest.topic != "" {
		var ti streams.TopicInfo
		if ti, err = adm.DescribeTopic(actx, dest.topic); errors.Is(err, streams.ErrTopicNotFound) {
			err = fmt.Errorf("--to-topic %q does not exist (create it with: recq topic create %s --partitions N)", dest.topic, dest.topic)
		}
		parts = len(ti.Partitions)
	}
	done()
	if err != nil {
		return err
	}
	var sk sink
	if dest.topic != "" {
		sk, err = openTopicSink(ctx, g.brokerList(), dest.topic, parts, dest.batch, dest.rate)
	} else {
		sk, err = openSink(out, cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			sk.abort()
		}
	}()
	rcl, err := g.registryClient(ctx)
	if err != nil {
		return err
	}
	serde, err := schema.NewSerde(rcl)
	if err != nil {
		return err
	}
	rd, err := streams.NewReader(g.brokerList(), append(w.options(topics), streams.WithTopics(topics...))...)
	if err != nil {
		return err
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, g.timeout)
	ranges, err := rd.Ranges(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("replay: resolving the window: %w", err)
	}
	if err := checkPartitions(topics, ranges, w.partitions()); err != nil {
		return err
	}
	prog := newProgress(stderr, every, ranges)
	var st replayStats
	for rec, err := range streams.Records(ctx, rd, replayDecoder(serde)) {
		var de *streams.DecodeError
		switch {
		case errors.As(err, &de):
			st.read++
			prog.saw(rec.Topic, rec.Partition, rec.Offset, st)
			reason := fmt.Sprintf("%s/%d/%d: %v", de.Topic, de.Partition, de.Offset, registryErr(de.Err))
			if strict {
				return fmt.Errorf("replay: %s; nothing was written (without --strict such records are skipped and counted)", reason)
			}
			st.skipped++
			if len(st.reasons) < skipReasons {
				st.reasons = append(st.reasons, reason)
			}
			continue
		case ctx.Err() != nil:
			if dest.topic != "" {
				return fmt.Errorf("replay: interrupted after %s published to %s (the open transaction, if any, aborted)", plural(st.written, "record"), dest.topic)
			}
			if out == "" || out == "-" {
				return fmt.Errorf("replay: interrupted after %s", plural(st.written, "record"))
			}
			return fmt.Errorf("replay: interrupted; %s not written", out)
		case err != nil:
			return fmt.Errorf("replay: reading %s: %w", strings.Join(topics, ", "), err)
		}
		st.read++
		r := &replayed{Record: rec, typ: rec.Type}
		if r.typ == "" {
			r.typ = rec.Value.Type
		}
		ok, err := f.match(r)
		if err != nil {
			return fmt.Errorf("replay: --where on %s/%d/%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if ok {
			st.matched++
			if err := sk.write(r); err != nil {
				return fmt.Errorf("replay: writing %s: %w", dest.name(out), err)
			}
			st.written++
		}
		prog.saw(rec.Topic, rec.Partition, rec.Offset, st)
	}
	if err := sk.commit(); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	committed = true
	prog.clear()
	summarize(stderr, st, sk.paths(), time.Since(begun))
	return nil
}

// name is what the replay writes to, for errors.
func (d destination) name(out string) string {
	if d.topic != "" {
		return "topic " + d.topic
	}
	if out == "" || out == "-" {
		return "stdout"
	}
	return out
}

// replayDecoder decodes Confluent-framed values through the registry and
// passes plain JSON values through (compacted, so each is one line).
func replayDecoder(serde *schema.Serde) streams.Decoder[schema.Generic] {
	generic := serde.GenericDecoder()
	return func(ctx context.Context, r *kgo.Record) (schema.Generic, error) {
		if framed(r.Value) {
			return generic(ctx, r)
		}
		var b bytes.Buffer
		if r.Value == nil || json.Compact(&b, r.Value) != nil {
			return schema.Generic{}, errors.New("the value is neither Confluent-framed Avro nor JSON")
		}
		return schema.Generic{JSON: b.Bytes()}, nil
	}
}

// checkPartitions refuses partitions named by --from-offset/--to-offset
// that a topic does not have: a typo there would silently replay nothing.
func checkPartitions(topics []string, ranges []streams.PartitionRange, named []int32) error {
	count := map[string]int32{}
	for _, r := range ranges {
		count[r.Topic]++
	}
	for _, t := range topics {
		for _, p := range named {
			if p >= count[t] {
				return usagef("topic %q has no partition %d (it has %d)", t, p, count[t])
			}
		}
	}
	return nil
}

func summarize(w io.Writer, st replayStats, paths []string, took time.Duration) {
	rate := float64(st.read) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "recq: replay: %s read, %d matched, %d written to %s, %d skipped (undecodable), in %v (%.0f records/s)\n",
		plural(st.read, "record"), st.matched, st.written, strings.Join(paths, ", "), st.skipped, took.Round(time.Millisecond), rate)
	for _, r := range st.reasons {
		fmt.Fprintf(w, "  skipped %s\n", r)
	}
	if st.skipped > len(st.reasons) {
		fmt.Fprintf(w, "  and %d more skipped\n", st.skipped-len(st.reasons))
	}
}
