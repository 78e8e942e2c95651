package streams

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkStamp is the publisher's own per-record work: what the produce
// comparison's ratio is made of.
func BenchmarkStamp(b *testing.B) {
	ctx := ContextWithMessage(context.Background(), Envelope{ID: "cause", CorrelationID: "flow"})
	b.ReportAllocs()
	for b.Loop() {
		Stamp(ctx, &kgo.Record{Topic: "t"})
	}
}
