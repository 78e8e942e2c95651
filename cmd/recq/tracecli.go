package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema/kafkastore"
	"github.com/recq/recq/streams"
)

// defaultTraceSince is how far back recq trace searches without --since
// (its --help says so).
const defaultTraceSince = "24h"

func newTraceCmd(g *globals) *cobra.Command {
	var (
		topics []string
		since  string
		out    = outputFlag("table")
	)
	cmd := &cobra.Command{
		Use:   "trace CORRELATION-ID [--topics T1,T2] [--since 24h|TIME] [-o json]",
		Short: "Show one flow's records across topics as a tree by causation",
		Long: `Show every record of one flow, those whose recq-correlation-id header is
CORRELATION-ID, as a tree by causation: a record's parent is the record
whose recq-id is its recq-causation-id. Siblings (and trees) are in time
order. Each row gives the record's type (recq-type), key, where it is
(TOPIC/PARTITION/OFFSET), its timestamp, the time since its tree's root and
since its parent, and its recq-id. It is the flow view for when no tracing
backend is at hand.

A root is a record without a recq-causation-id, or one whose cause was not
found, marked "?" (older than --since, on a topic not searched, or never
written). A record with the recq-id of an earlier one (a dead event in
<group>.dlq, a redrive in <group>.retry, a saga's routed copy) is shown
under that one, marked "(copy)".

What it reads: by default the last ` + defaultTraceSince + ` (--since) of every topic but the
internal ones (any __ name, such as __consumer_offsets) and the schema
registry's ` + kafkastore.DefaultTopic + `; --topics names the topics instead. That costs a read of
every record of the window on every topic searched: from each partition's
first record at or after --since (found by timestamp) to the end the
partition has when recq trace starts. Only headers are looked at, no
payload is decoded; only committed records are shown, and it does not wait
for new ones. Narrow --topics and --since on a busy cluster.

Nothing found is an error (exit 1). -o json prints one object:
  {"correlation_id", "since", "topics": [searched], "records": N, "roots": [NODE]}
  NODE {"id", "causation_id", "type", "key", "topic", "partition", "offset",
        "timestamp", "from_root_ms", "from_parent_ms" (null for a root),
        "copy", "cause_missing", "children": [NODE]}
Strings are "" where a header is absent; a key is null when absent and
base64 (with "key_encoding": "base64") when it is not UTF-8.`,
		Example: `  recq trace 0193a5c2-7f1e-7c4d-8a4b-1f2e3d4c5b6a
  recq trace 0193a5c2-7f1e-7c4d-8a4b-1f2e3d4c5b6a --topics shop.orders.events,shop.payments.events --since 2h
  recq trace 0193a5c2-7f1e-7c4d-8a4b-1f2e3d4c5b6a --since 2026-01-02T15:04:05Z -o json | jq '.roots[0].children'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			corr := a[0]
			if corr == "" {
				return usagef("trace: CORRELATION-ID is empty")
			}
			now := time.Now()
			from, err := parseSince(since, now)
			if err != nil {
				return err
			}
			var named []string
			for _, t := range topics {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(named, t) {
					named = append(named, t)
				}
			}
			if cmd.Flags().Changed("topics") && len(named) == 0 {
				return usagef("trace: --topics is empty")
			}
			names, err := g.traceTopics(cmd, named)
			if err != nil {
				return err
			}
			recs, err := readFlow(cmd.Context(), g.brokerList(), names, from, corr)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return fmt.Errorf("no records with correlation id %s in %s since %s; widen --since or --topics",
					corr, topicsPhrase(names), from.UTC().Format(time.RFC3339))
			}
			roots := buildTrace(recs)
			tr := traceJSON{CorrelationID: corr, Since: from.UTC().Format(time.RFC3339Nano), Topics: names, Records: len(recs), Roots: nodesJSON(roots)}
			return render(cmd.OutOrStdout(), out, tr, func(w io.Writer) { printTrace(w, corr, names, roots, len(recs)) })
		},
	}
	cmd.Flags().StringSliceVar(&topics, "topics", nil, "comma-separated topics to search (default: every topic but __ ones and "+kafkastore.DefaultTopic+")")
	cmd.Flags().StringVar(&since, "since", defaultTraceSince, "how far back to search: a duration (30m, 24h, 7d) or an RFC 3339 time; every record since then is read")
	cmd.Flags().VarP(&out, "output", "o", "output format: table (a tree) or json")
	return cmd
}

// parseSince reads --since: a duration back from now (Go's, or whole
// days such as 7d) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	bad := func(why string) error {
		return usagef("trace: --since %q: %s (want a duration such as 30m, 24h or 7d, or an RFC 3339 time such as 2026-01-02T15:04:05Z)", s, why)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.After(now) {
			return time.Time{}, bad("is in the future")
		}
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		if n, perr := strconv.Atoi(days); perr == nil && n <= 1<<16 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	switch {
	case err != nil:
		return time.Time{}, bad("not a duration or a time")
	case d <= 0:
		return time.Time{}, bad("must be more than 0")
	}
	return now.Add(-d), nil
}

// traceTopics returns the topics to search, sorted: the named ones, which
// must exist, or every topic but internal ones.
func (g *globals) traceTopics(cmd *cobra.Command, named []string) ([]string, error) {
	var names []string
	err := g.withAdmin(cmd, func(ctx context.Context, adm *streams.Admin) error {
		if len(named) > 0 {
			names = named
			if _, err := adm.PartitionCounts(ctx, names...); err != nil {
				if errors.Is(err, streams.ErrTopicNotFound) {
					for _, t := range names {
						if _, err := adm.PartitionCounts(ctx, t); errors.Is(err, streams.ErrTopicNotFound) {
							return fmt.Errorf("topic %q does not exist (see: recq topic list)", t)
						}
					}
				}
				return err
			}
			return nil
		}
		all, err := adm.ListTopics(ctx, false)
		if err != nil {
			return err
		}
		for _, t := range all {
			if !skipTraceTopic(t) {
				names = append(names, t.Name)
			}
		}
		if len(names) == 0 {
			return errors.New("no topics to search: the broker has only internal ones (see: recq topic list)")
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// skipTraceTopic reports a topic recq trace leaves out by default: Kafka's
// internal ones (__consumer_offsets, __transaction_state, any __ name) and
// the schema registry's log, whose records never carry recq headers.
func skipTraceTopic(t streams.TopicSummary) bool {
	return t.Internal || strings.HasPrefix(t.Name, "__") || t.Name == kafkastore.DefaultTopic
}

func topicsPhrase(names []string) string {
	if len(names) == 1 {
		return "topic " + names[0]
	}
	return "topics " + strings.Join(names, ", ")
}

// traceRecord is what recq trace keeps of a record of the flow: headers
// and position, never the payload.
type traceRecord struct {
	ID, CausationID, Type string
	Key                   []byte
	Topic                 string
	Partition             int32
	Offset                int64
	Timestamp             time.Time
}

// readFlow reads topics from the first offsets at or after from to the
// ends they have now (committed records only) and keeps the records of
// flow corr. Each record's headers are looked at once; nothing else is.
func readFlow(ctx context.Context, brokers, topics []string, from time.Time, corr string) ([]traceRecord, error) {
	rd, err := streams.NewReader(brokers, streams.WithTopics(topics...), streams.WithFrom(streams.FromTime(from)), streams.WithStopAtEnd())
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []traceRecord
	for {
		recs, err := rd.Poll(ctx)
		for _, r := range recs {
			if tr, ok := flowRecord(r, corr); ok {
				out = append(out, tr)
			}
		}
		switch {
		case errors.Is(err, streams.ErrEndReached):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("trace: reading %s: %w", strings.Join(topics, ", "), err)
		}
	}
}

// flowRecord returns r's trace record if its correlation id is corr. The
// first header of a name wins, as in streams.Header.
func flowRecord(r *kgo.Record, corr string) (traceRecord, bool) {
	var tr traceRecord
	var seen [4]bool // correlation, id, causation, type
	matched := false
	for _, h := range r.Headers {
		var i int
		switch h.Key {
		case streams.HeaderCorrelationID:
			i = 0
		case streams.HeaderID:
			i = 1
		case streams.HeaderCausationID:
			i = 2
		case streams.HeaderType:
			i = 3
		default:
			continue
		}
		if seen[i] {
			continue
		}
		seen[i] = true
		switch i {
		case 0:
			if string(h.Value) != corr { // no allocation
				return traceRecord{}, false
			}
			matched = true
		case 1:
			tr.ID = string(h.Value)
		case 2:
			tr.CausationID = string(h.Value)
		case 3:
			tr.Type = string(h.Value)
		}
	}
	if !matched {
		return traceRecord{}, false
	}
	tr.Key = r.Key
	tr.Topic, tr.Partition, tr.Offset, tr.Timestamp = r.Topic, r.Partition, r.Offset, r.Timestamp
	return tr, true
}

// traceNode is a record in the causation tree.
type traceNode struct {
	traceRecord
	parent, root *traceNode
	children     []*traceNode
	// copy: the record has the recq-id of its parent, an earlier record (a
	// dead-letter, retry or routed copy).
	copy bool
	// causeMissing: a root whose recq-causation-id names no record found.
	causeMissing bool
}

// before orders records by time, then by where they are.
func before(a, b *traceNode) int {
	return cmp.Or(a.Timestamp.Compare(b.Timestamp), strings.Compare(a.Topic, b.Topic),
		cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// buildTrace arranges recs into trees by causation and returns the roots,
// everything in time order. A record's parent is the earliest record whose
// recq-id is its recq-causation-id; a later record with an earlier one's
// recq-id is a copy, placed under it. Records in a causation cycle (only
// bad data makes one) are cut loose at their earliest record, which
// becomes a root.
func buildTrace(recs []traceRecord) []*traceNode {
	nodes := make([]*traceNode, len(recs))
	for i := range recs {
		nodes[i] = &traceNode{traceRecord: recs[i]}
	}
	slices.SortStableFunc(nodes, before)
	byID := make(map[string]*traceNode, len(nodes))
	for _, n := range nodes {
		if n.ID == "" {
			continue
		}
		if orig, ok := byID[n.ID]; ok {
			n.parent, n.copy = orig, true
			continue
		}
		byID[n.ID] = n
	}
	for _, n := range nodes {
		if n.copy || n.CausationID == "" {
			continue
		}
		if p, ok := byID[n.CausationID]; ok && p != n {
			n.parent = p
		} else if !ok {
			n.causeMissing = true
		}
	}
	// Children in time order, since nodes are.
	for _, n := range nodes {
		if n.parent != nil {
			n.parent.children = append(n.parent.children, n)
		}
	}
	var roots []*traceNode
	var mark func(n, root *traceNode)
	mark = func(n, root *traceNode) {
		n.root = root
		for _, c := range n.children {
			mark(c, root)
		}
	}
	for _, n := range nodes {
		if n.parent == nil {
			roots = append(roots, n)
			mark(n, n)
		}
	}
	for _, n := range nodes {
		if n.root != nil {
			continue
		}
		// In a cycle, or under one: cut its parent link.
		p := n.parent
		p.children = slices.DeleteFunc(p.children, func(c *traceNode) bool { return c == n })
		n.parent = nil
		roots = append(roots, n)
		mark(n, n)
	}
	slices.SortStableFunc(roots, before)
	return roots
}

// fromRoot and fromParent are n's time deltas.
func (n *traceNode) fromRoot() time.Duration { return n.Timestamp.Sub(n.root.Timestamp) }

func (n *traceNode) fromParent() (time.Duration, bool) {
	if n.parent == nil {
		return 0, false
	}
	return n.Timestamp.Sub(n.parent.Timestamp), true
}

// delta is "+1.5s", "+0s", "-20ms": rounded to the millisecond, signed.
func delta(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// keyText is a key as a row shows it.
func keyText(k []byte) string {
	switch {
	case k == nil:
		return "-"
	case utf8.Valid(k) && !strings.ContainsAny(string(k), "\t\n\r"):
		return string(k)
	default:
		return "base64:" + base64.StdEncoding.EncodeToString(k)
	}
}

func printTrace(w io.Writer, corr string, topics []string, roots []*traceNode, count int) {
	var in []string
	var walk func(n *traceNode, each func(*traceNode))
	walk = func(n *traceNode, each func(*traceNode)) {
		each(n)
		for _, c := range n.children {
			walk(c, each)
		}
	}
	missing, copies := false, false
	for _, r := range roots {
		walk(r, func(n *traceNode) {
			if !slices.Contains(in, n.Topic) {
				in = append(in, n.Topic)
			}
			missing = missing || n.causeMissing
			copies = copies || n.copy
		})
	}
	slices.Sort(in)
	fmt.Fprintf(w, "flow %s: %s in %s (searched %s), %s\n", corr, plural(count, "record"), strings.Join(in, ", "),
		plural(len(topics), "topic"), plural(len(roots), "root"))
	fmt.Fprintln(w, "TYPE\tKEY\tRECORD\tTIME\tFROM ROOT\tFROM PARENT\tID")
	var row func(n *traceNode, prefix, branch string)
	row = func(n *traceNode, prefix, branch string) {
		typ := dash(n.Type)
		if n.copy {
			typ += " (copy)"
		}
		parent := "-"
		if d, ok := n.fromParent(); ok {
			parent = delta(d)
		} else if n.causeMissing {
			parent = "?"
		}
		fmt.Fprintf(w, "%s%s%s\t%s\t%s/%d/%d\t%s\t%s\t%s\t%s\n", prefix, branch, typ, keyText(n.Key), n.Topic, n.Partition, n.Offset,
			n.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"), delta(n.fromRoot()), parent, dash(n.ID))
		switch branch {
		case "├─ ":
			prefix += "│  "
		case "└─ ":
			prefix += "   "
		}
		for i, c := range n.children {
			b := "├─ "
			if i == len(n.children)-1 {
				b = "└─ "
			}
			row(c, prefix, b)
		}
	}
	for _, r := range roots {
		row(r, "", "")
	}
	if missing {
		fmt.Fprintln(w, "?: the record's cause (its recq-causation-id) is not among those found: older than --since, on a topic not searched, or never written")
	}
	if copies {
		fmt.Fprintln(w, "(copy): the record has the recq-id of the one above it (a dead event, a redrive or a saga's routed copy)")
	}
}

// traceJSON is recq trace -o json (documented in its --help; keep them
// in step).
type traceJSON struct {
	CorrelationID string          `json:"correlation_id"`
	Since         string          `json:"since"`
	Topics        []string        `json:"topics"`
	Records       int             `json:"records"`
	Roots         []traceNodeJSON `json:"roots"`
}

type traceNodeJSON struct {
	ID           string          `json:"id"`
	CausationID  string          `json:"causation_id"`
	Type         string          `json:"type"`
	Key          *string         `json:"key"`
	KeyEncoding  string          `json:"key_encoding,omitempty"`
	Topic        string          `json:"topic"`
	Partition    int32           `json:"partition"`
	Offset       int64           `json:"offset"`
	Timestamp    string          `json:"timestamp"`
	FromRootMS   int64           `json:"from_root_ms"`
	FromParentMS *int64          `json:"from_parent_ms"`
	Copy         bool            `json:"copy"`
	CauseMissing bool            `json:"cause_missing"`
	Children     []traceNodeJSON `json:"children"`
}

func nodesJSON(ns []*traceNode) []traceNodeJSON {
	out := make([]traceNodeJSON, 0, len(ns))
	for _, n := range ns {
		j := traceNodeJSON{ID: n.ID, CausationID: n.CausationID, Type: n.Type, Topic: n.Topic, Partition: n.Partition, Offset: n.Offset,
			Timestamp: n.Timestamp.UTC().Format(time.RFC3339Nano), FromRootMS: n.fromRoot().Milliseconds(),
			Copy: n.copy, CauseMissing: n.causeMissing, Children: nodesJSON(n.children)}
		if n.Key != nil {
			k := string(n.Key)
			if !utf8.Valid(n.Key) {
				k, j.KeyEncoding = base64.StdEncoding.EncodeToString(n.Key), "base64"
			}
			j.Key = &k
		}
		if d, ok := n.fromParent(); ok {
			ms := d.Milliseconds()
			j.FromParentMS = &ms
		}
		out = append(out, j)
	}
	return out
}
