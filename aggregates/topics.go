package aggregates

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

// HeaderPartitions, on every event, records how many partitions the
// aggregate's topics had when it was written. A key's partition is a
// function of that count, so a runner refuses to start once it changed:
// every aggregate would be looked for where its history is not.
const HeaderPartitions = "recq-partitions"

// CommandsTopic and EventsTopic name an aggregate's topics.
func CommandsTopic(aggregate string) string { return aggregate + ".commands" }

// EventsTopic is the topic an aggregate's events are stored on.
func EventsTopic(aggregate string) string { return aggregate + ".events" }

// EventsTopicConfigs are the configs of an events topic: it is the event
// store, so nothing in it is ever deleted, by age, size or compaction.
var EventsTopicConfigs = map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}

// ErrTopics is returned (wrapped) by Runner.Run when the aggregate's topics
// cannot hold an event store: partition counts that differ or changed, or
// an events topic that deletes records.
var ErrTopics = errors.New("aggregate topics unfit for an event store")

// EnsureTopics creates an aggregate's command and event topics with n
// partitions (the events topic with EventsTopicConfigs), or checks that
// existing ones are co-partitioned. The runner checks the rest when it
// starts: retention, and the partition count its events were written with.
func EnsureTopics(ctx context.Context, adm *streams.Admin, aggregate string, n int32) error {
	specs := []streams.TopicSpec{
		{Name: CommandsTopic(aggregate), Partitions: n},
		{Name: EventsTopic(aggregate), Partitions: n, Configs: EventsTopicConfigs},
	}
	for _, spec := range specs {
		if err := adm.EnsureTopic(ctx, spec); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
	}
	_, _, err := describeTopics(ctx, adm, aggregate)
	return err
}

// describeTopics describes both topics and checks they have the same
// number of partitions.
func describeTopics(ctx context.Context, adm *streams.Admin, aggregate string) (cmds, evts streams.TopicInfo, err error) {
	if cmds, err = adm.DescribeTopic(ctx, CommandsTopic(aggregate)); err != nil {
		return cmds, evts, fmt.Errorf("aggregates: %w", err)
	}
	if evts, err = adm.DescribeTopic(ctx, EventsTopic(aggregate)); err != nil {
		return cmds, evts, fmt.Errorf("aggregates: %w", err)
	}
	return cmds, evts, notShared(aggregate, len(cmds.Partitions), len(evts.Partitions))
}

// notShared is the error of topics whose partition counts (c, e) differ.
func notShared(aggregate string, c, e int) error {
	if c == e {
		return nil
	}
	cmds, evts := CommandsTopic(aggregate), EventsTopic(aggregate)
	return fmt.Errorf("aggregates: %w: %s has %d partitions but %s has %d; an aggregate's commands and events must share partitions. "+
		"If %s holds no events yet, delete it and let EnsureTopics recreate it; otherwise scale the aggregate with a new topic pair (docs/ARCHITECTURE.md, \"Scaling an aggregate\")",
		ErrTopics, cmds, c, evts, e, evts)
}

// checkTopics is what a runner verifies before it handles a command, and
// returns the partition count every key's home is computed with.
func (r *Runner[S]) checkTopics(ctx context.Context, adm *streams.Admin) (int, error) {
	_, evts, err := describeTopics(ctx, adm, r.agg.name)
	if err != nil {
		return 0, err
	}
	n := len(evts.Partitions)
	if r.agg.stateless {
		return n, nil // a service reads no history: nothing to keep or find
	}
	if !evts.Retention.Forever() && !r.cfg.finiteRetention {
		return 0, fmt.Errorf("aggregates: %w: %s deletes records (%s), but it is the event store: an aggregate whose old events are gone is rebuilt from what is left. "+
			"Keep everything with `recq topic alter %s --config retention.ms=-1 --config retention.bytes=-1 --config cleanup.policy=delete`, or run with aggregates.WithFiniteRetention() to accept the loss",
			ErrTopics, evts.Name, evts.Retention, evts.Name)
	}
	for _, p := range evts.Partitions {
		recs, err := r.history.Tail(ctx, evts.Name, p.Partition, 16)
		if err != nil {
			return 0, fmt.Errorf("aggregates: %w", err)
		}
		for i := len(recs) - 1; i >= 0; i-- {
			v, ok := streams.Header(recs[i], HeaderPartitions)
			if !ok {
				continue
			}
			if v != strconv.Itoa(n) {
				return 0, fmt.Errorf("aggregates: %w: the events in %s were written when the topics had %s partitions; they have %d now, so aggregates would be looked for in partitions that do not hold their history. "+
					"Partitions cannot be added to an aggregate's topics: scale it with a new topic pair (docs/ARCHITECTURE.md, \"Scaling an aggregate\")",
					ErrTopics, evts.Name, v, n)
			}
			break
		}
	}
	return n, nil
}

// TopicsWatch is how often a running runner checks that its topics still
// have the partition count it started with.
const TopicsWatch = 5 * time.Second

// watchTopics halts the runner, within TopicsWatch, once partitions are
// added to either topic: the group would not rebalance onto new command
// partitions for minutes (metadata age), and meanwhile keys would be
// homed by a count that no longer holds. It asks only for the counts (one
// metadata request). An unreachable broker is the probe's business: a
// failed request is only tried again.
func (r *Runner[S]) watchTopics(ctx context.Context, adm *streams.Admin) {
	t := time.NewTicker(TopicsWatch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cmds, evts := CommandsTopic(r.agg.name), EventsTopic(r.agg.name)
		counts, err := adm.PartitionCounts(ctx, cmds, evts)
		if err != nil {
			continue
		}
		if err := notShared(r.agg.name, counts[cmds], counts[evts]); err != nil {
			r.halt(err)
			return
		}
		if n := counts[cmds]; n != r.partitions {
			r.halt(fmt.Errorf("%w: partitions were added to %s and %s while the runner ran (it started with %d, they have %d now); partitions cannot be added to an aggregate's topics: scale it with a new topic pair (docs/ARCHITECTURE.md, \"Scaling an aggregate\")",
				ErrTopics, cmds, evts, r.partitions, n))
			return
		}
	}
}

// partitioner places events and re-homed commands on the partition the
// runner sets (an aggregate's home, never the client's choice), and every
// other record (replies, dead events) as franz-go does by default.
type partitioner struct {
	manual map[string]bool
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}
