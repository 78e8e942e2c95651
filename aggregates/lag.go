package aggregates

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/tracing"
)

// noteInHand records, per partition, the timestamp of the first command
// of a polled batch: the oldest the runner has in hand until the batch's
// transaction commits (inHandDone).
func (r *Runner[S]) noteInHand(recs []*kgo.Record) {
	if !tracing.MetricsEnabled() {
		return // only the lag metrics read it: no lock per batch without them
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		if _, ok := r.inHand[rec.Partition]; !ok {
			r.inHand[rec.Partition] = rec.Timestamp
		}
	}
}

func (r *Runner[S]) inHandDone() {
	if !tracing.MetricsEnabled() {
		return
	}
	r.mu.Lock()
	clear(r.inHand)
	r.mu.Unlock()
}

// reportLag reports, for each commands partition the runner owns, the
// commands not yet handled (the last stable offset less the group's
// committed offset, which the runner commits in each batch's transaction)
// and the age of the oldest of them (that of the batch in hand; 0 when
// none is in hand). The aggregate runner is a consumer group like a
// projector, and its backlog is the command path's latency.
func (r *Runner[S]) reportLag(adm *kadm.Client) func(context.Context, tracing.LagReport) {
	topic := CommandsTopic(r.agg.name)
	return func(ctx context.Context, report tracing.LagReport) {
		ends, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			r.log.Warn("cannot ask the broker for the lag metrics' head offsets", "err", err)
			return
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			r.log.Warn("cannot ask the broker for the lag metrics' start offsets", "err", err)
			return
		}
		committed, err := adm.FetchOffsets(ctx, r.group)
		if err != nil {
			r.log.Warn("cannot ask the broker for the lag metrics' committed offsets", "err", err)
			return
		}
		type lag struct {
			partition int32
			records   int64
			age       time.Duration
		}
		r.mu.Lock()
		lags := make([]lag, 0, len(r.owned))
		for p := range r.owned {
			end, ok := ends.Lookup(topic, p)
			if !ok || end.Err != nil {
				continue
			}
			from := int64(-1)
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil {
				from = c.At
			}
			if s, ok := starts.Lookup(topic, p); from < 0 && ok && s.Err == nil {
				from = s.Offset // nothing committed yet: every command there is to handle
			}
			l := lag{partition: p, records: max(end.Offset-from, 0)}
			if t, ok := r.inHand[p]; ok && l.records > 0 {
				l.age = time.Since(t)
			}
			lags = append(lags, l)
		}
		r.mu.Unlock()
		for _, l := range lags {
			report(r.group, topic, l.partition, l.records, l.age)
		}
	}
}
