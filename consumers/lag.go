package consumers

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/tracing"
)

// noteOldest records the timestamp of the first record of recs not yet
// handled (at or past next): the oldest the partition has in hand, until
// the batch's commit lands.
func (r *Runner) noteOldest(key state.Partition, next int64, recs []*kgo.Record) {
	for _, rec := range recs {
		if rec.Offset >= next {
			r.mu.Lock()
			if p := r.parts[key]; p != nil {
				p.oldest = rec.Timestamp
			}
			r.mu.Unlock()
			return
		}
	}
}

// reportLag reports, for each partition the member owns, the records not
// yet handled (the last stable offset, asked of the broker now: a member
// stuck on a record fetches nothing new, so what it fetched last would not
// say) and how old the oldest of them is: the timestamp of the first
// record of the batch in hand (0 when none is in hand).
func (r *Runner) reportLag(ctx context.Context, report tracing.LagReport) {
	adm := r.admin()
	if adm == nil {
		return // not joined yet
	}
	topics := r.c.topics
	if !r.cfg.NoDeadLetters {
		topics = append([]string{r.retryTopic}, topics...)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		r.log.Warn("cannot ask the broker for the lag metrics' head offsets", "err", err)
		return
	}
	type lag struct {
		key     state.Partition
		records int64
		age     time.Duration
	}
	r.mu.Lock()
	lags := make([]lag, 0, len(r.parts))
	for key, p := range r.parts {
		end, ok := ends.Lookup(key.Topic, key.Partition)
		if !ok || end.Err != nil {
			continue
		}
		l := lag{key: key, records: max(end.Offset-p.next, 0)}
		if l.records > 0 && !p.oldest.IsZero() {
			l.age = time.Since(p.oldest)
		}
		lags = append(lags, l)
	}
	r.mu.Unlock()
	for _, l := range lags {
		report(r.group, l.key.Topic, l.key.Partition, l.records, l.age)
	}
}
