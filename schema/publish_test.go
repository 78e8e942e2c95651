package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

type OrderPlaced struct {
	ID    string `avro:"id"`
	Total int32  `avro:"total"`
	Note  *string
}

// The serde is the publisher's codec: a value that does not fit its schema is
// refused with the field named, and nothing reaches Kafka; a valid one is
// published Confluent-framed with its recq-type and decodes back.
func TestPublisherWithSerdeValidatesBeforeProducing(t *testing.T) {
	addr := testenv.Kafka(t)
	testenv.Topic(t, addr, "orders", 1)
	serde := newSerde(t, newRegistry(t), schema.WithAutoRegister(true),
		schema.WithSchema(&narrow{}, `{"type":"record","name":"Narrow","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"int"}]}`))
	pub, err := streams.NewPublisher([]string{addr}, streams.WithCodec(serde))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err = pub.PublishValue(ctx, "orders", "o1", struct{ OrderPlaced }{})
	if err == nil {
		t.Fatal("an anonymous struct has no Avro name and must be refused")
	}
	bad := &narrow{ID: "o1", Total: 1 << 40}
	err = pub.PublishValue(ctx, "orders", "o1", bad)
	if !errors.Is(err, schema.ErrInvalidValue) || !strings.Contains(err.Error(), `field "total"`) {
		t.Fatalf("want an invalid-value error naming field total, got %v", err)
	}
	end, err := streams.NewAdmin(testenv.Client(t, addr)).EndOffsets(ctx, "orders")
	if err != nil || end["orders"][0] != 0 {
		t.Fatalf("refused values reached Kafka: end offset %d (%v)", end["orders"][0], err)
	}

	note := "gift"
	if err := pub.PublishValue(ctx, "orders", "o1", OrderPlaced{ID: "o1", Total: 12, Note: &note}); err != nil {
		t.Fatal(err)
	}
	rd, err := streams.NewReader([]string{addr}, streams.WithTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	recs, err := rd.Poll(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("poll: %d records, %v", len(recs), err)
	}
	env, _ := streams.ReadEnvelope(recs[0])
	if env.Type != "schema_test.OrderPlaced" || recs[0].Value[0] != 0 {
		t.Fatalf("type %q, first byte %d: want schema_test.OrderPlaced, Confluent magic 0", env.Type, recs[0].Value[0])
	}
	var got OrderPlaced
	if err := serde.Decode(ctx, "orders", recs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "o1" || got.Total != 12 || got.Note == nil || *got.Note != "gift" {
		t.Fatalf("decoded %+v", got)
	}
}

// narrow is bound to a schema whose total is an Avro int, narrower than its
// Go field, so there is a value to refuse.
type narrow struct {
	ID    string `avro:"id"`
	Total int64  `avro:"total"`
}
