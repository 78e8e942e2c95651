package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/recq/recq/streams"
	"github.com/recq/recq/tracing"
)

// serveGroupMetrics serves recq dev's metrics on addr: every consumer
// group's lag, partition by partition, from its committed offsets (recq's
// runners commit theirs behind every store commit), asked of the broker at
// each scrape.
func serveGroupMetrics(ctx context.Context, addr, broker string) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, tracing.WithServiceName("recq-dev"), tracing.WithMetricsAddr(addr))
	if err != nil {
		return nil, err
	}
	cl, err := streams.NewClient([]string{broker})
	if err != nil {
		_ = shutdown(ctx)
		return nil, err
	}
	adm := streams.NewAdmin(cl)
	unregister := tracing.RegisterLag(func(ctx context.Context, report tracing.LagReport) {
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			slog.Warn("recq dev: metrics: cannot list the consumer groups", "err", err)
			return
		}
		for _, g := range groups {
			info, err := adm.DescribeGroup(ctx, g.Name)
			if err != nil {
				continue // gone since the list
			}
			for _, p := range info.Partitions {
				if p.Lag >= 0 {
					report(g.Name, p.Topic, p.Partition, p.Lag, -1) // the age is the runners' to tell
				}
			}
		}
	})
	return func() {
		unregister()
		cl.Close()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}, nil
}
