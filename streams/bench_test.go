package streams_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// BenchmarkProduce compares raw franz-go with streams.Publisher producing the
// same 100-byte records to the same in-process broker over TCP.
//
// "raw-franz-go" is what a franz-go user writes to produce the same records:
// a UUIDv7 (google/uuid) per record as message and correlation id headers.
// Its ratio to "streams-publisher" is the publisher's overhead. Two more
// show where the cost lies: "raw-franz-go-pregenerated-ids" makes its ids
// before the clock starts (the same bytes on the wire, no id cost), and
// "raw-franz-go-no-headers" sends no envelope at all.
func BenchmarkProduce(b *testing.B) {
	addr := testenv.Kafka(b)
	testenv.Topic(b, addr, "bench", 4)
	value := make([]byte, 100)
	ctx := context.Background()

	run := func(b *testing.B, produce func(*kgo.Record, func(*kgo.Record, error)), flush func(context.Context) error, mk func() *kgo.Record) {
		b.SetBytes(int64(len(value)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			produce(mk(), failOnErr(b))
		}
		if err := flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() *kgo.Record { return &kgo.Record{Topic: "bench", Key: []byte("k"), Value: value} }

	b.Run("raw-franz-go-no-headers", func(b *testing.B) {
		cl := testenv.Client(b, addr)
		run(b, func(r *kgo.Record, f func(*kgo.Record, error)) { cl.Produce(ctx, r, f) }, cl.Flush, bare)
	})
	b.Run("raw-franz-go", func(b *testing.B) {
		cl := testenv.Client(b, addr)
		run(b, func(r *kgo.Record, f func(*kgo.Record, error)) { cl.Produce(ctx, r, f) }, cl.Flush, func() *kgo.Record {
			r := bare()
			id := []byte(uuid.Must(uuid.NewV7()).String())
			r.Headers = []kgo.RecordHeader{{Key: streams.HeaderID, Value: id}, {Key: streams.HeaderCorrelationID, Value: id}}
			return r
		})
	})
	b.Run("raw-franz-go-pregenerated-ids", func(b *testing.B) {
		cl := testenv.Client(b, addr)
		// Distinct ids made before the clock starts: identical ones would
		// compress away and make the raw side's wire smaller.
		ids := make([][]byte, b.N)
		for i := range ids {
			ids[i] = []byte(streams.NewID())
		}
		i := 0
		run(b, func(r *kgo.Record, f func(*kgo.Record, error)) { cl.Produce(ctx, r, f) }, cl.Flush, func() *kgo.Record {
			r := bare()
			r.Headers = []kgo.RecordHeader{{Key: streams.HeaderID, Value: ids[i]}, {Key: streams.HeaderCorrelationID, Value: ids[i]}}
			i++
			return r
		})
	})
	b.Run("streams-publisher", func(b *testing.B) {
		p, err := streams.NewPublisher([]string{addr})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		run(b, func(r *kgo.Record, f func(*kgo.Record, error)) { p.PublishAsync(ctx, r, f) }, p.Flush, bare)
	})
}

func failOnErr(b *testing.B) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) {
		if err != nil {
			b.Error(err)
		}
	}
}
