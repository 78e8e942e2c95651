package tracing

import (
	"context"
	"time"
)

// A lagSource reports consumer groups' lag, partition by partition.
type lagSource struct {
	read func(ctx context.Context, report LagReport)
}

// LagReport takes one partition's lag for group: the records not yet
// handled, and the age of the oldest of them (negative: not known).
type LagReport func(group, topic string, partition int32, records int64, age time.Duration)

// RegisterLag makes read report lag at each collection of the metrics,
// until the returned function is called: for a consumer runner, each
// partition its member owns, the records not yet handled (the last stable
// offset less the next offset) and the age of the oldest of them (0 when
// there are none); for recq dev, every group's committed offsets. It is
// what recq.consumer.lag and recq.consumer.lag.age are made of; franz-go's
// plugins report no lag. ctx bounds what read asks the broker (lagTimeout
// at most). Metrics off
// (Setup not called, or called without them), it does nothing.
func RegisterLag(read func(ctx context.Context, report LagReport)) (unregister func()) {
	m := curMeters.Load()
	if m == nil {
		return func() {}
	}
	s := &lagSource{read: read}
	m.mu.Lock()
	m.lags[s] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.lags, s)
		m.mu.Unlock()
	}
}

func (m *meters) observeLag(ctx context.Context, observe LagReport) {
	m.mu.Lock()
	sources := make([]*lagSource, 0, len(m.lags))
	for s := range m.lags {
		sources = append(sources, s)
	}
	m.mu.Unlock()
	for _, s := range sources {
		sctx, cancel := context.WithTimeout(ctx, lagTimeout)
		s.read(sctx, func(group, topic string, partition int32, records int64, age time.Duration) {
			observe(group, topic, partition, records, age)
		})
		cancel()
	}
}

// lagTimeout bounds each source's answers at a collection of the metrics:
// a source waiting on an unreachable broker must not hold the others.
const lagTimeout = 5 * time.Second
