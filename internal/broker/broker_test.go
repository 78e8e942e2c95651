package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/recq/recq/internal/broker"
	"github.com/recq/recq/internal/testenv"
)

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// metadata asks for topic with allow_auto_topic_creation set to allow and
// returns the topic's partition count and error.
func metadata(t *testing.T, cl *kgo.Client, topic string, allow bool) (int, error) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = allow
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata %s: %d topics in the answer", topic, len(resp.Topics))
	}
	return len(resp.Topics[0].Partitions), kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

// createTopic creates topic with partitions (-1: the broker's default) and
// returns the partition count the broker reports.
func createTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) int32 {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	return resp.Topics[0].NumPartitions
}

// With AutoCreateTopics, a metadata request that allows it creates the
// topics it names, with Partitions partitions; one that does not (franz-go's
// default, every recq client) still sees a missing topic; names Kafka would
// refuse and internal names are never created; explicitly created topics
// keep their own partition count, and CreateTopics without one gets
// Partitions, as Kafka's num.partitions.
func TestAutoCreateTopics(t *testing.T) {
	var log testenv.LogBuffer
	b := start(t, broker.Config{AutoCreateTopics: true, Partitions: 3, Log: &log})
	cl := testenv.Client(t, b.Addr())

	if _, err := metadata(t, cl, "strict", false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("metadata without allow_auto_topic_creation: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if _, err := metadata(t, cl, "strict", false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("the topic was created by a request that did not allow it: %v", err)
	}
	if n, err := metadata(t, cl, "auto", true); err != nil || n != 3 {
		t.Fatalf("metadata allowing auto-creation: %v, %d partitions; want the topic with 3", err, n)
	}
	if n, err := metadata(t, cl, "auto", false); err != nil || n != 3 {
		t.Fatalf("the auto-created topic: %v, %d partitions; want it there with 3", err, n)
	}
	if !strings.Contains(log.String(), `created topic "auto" (3 partition(s))`) {
		t.Errorf("the broker did not log the auto-created topic:\n%s", log.String())
	}
	for _, bad := range []string{"bad/name", "..", "__consumer_offsets", "with space", strings.Repeat("x", 250)} {
		if _, err := metadata(t, cl, bad, true); err == nil {
			t.Errorf("topic %q was auto-created; Kafka refuses such names", bad)
		}
	}

	if n := createTopic(t, cl, "explicit", 5); n != 5 {
		t.Fatalf("explicit topic has %d partitions, want 5", n)
	}
	if n, err := metadata(t, cl, "explicit", true); err != nil || n != 5 {
		t.Fatalf("explicit topic after an auto-creating request: %v, %d partitions; want 5", err, n)
	}
	if n := createTopic(t, cl, "default-count", -1); n != 3 {
		t.Fatalf("topic created with the broker's default count has %d partitions, want 3", n)
	}

	// A producer that allows auto-creation (as kcat's and kafkajs's do)
	// produces to a topic nobody created.
	pcl := testenv.Client(t, b.Addr(), kgo.AllowAutoTopicCreation())
	if err := pcl.ProduceSync(ctxT(t), &kgo.Record{Topic: "produced", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to a missing topic with auto-creation allowed: %v", err)
	}
}

// Without AutoCreateTopics (the zero Config, which tests use) no request
// creates a topic, and topics created without a count get Kafka's default
// of 1 partition (kfake's own default is 10).
func TestAutoCreateOffByDefault(t *testing.T) {
	b := start(t, broker.Config{})
	cl := testenv.Client(t, b.Addr())
	if _, err := metadata(t, cl, "missing", true); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("metadata allowing auto-creation on a broker without it: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if n := createTopic(t, cl, "default-count", -1); n != broker.DefaultPartitions {
		t.Fatalf("topic created with the broker's default count has %d partitions, want %d", n, broker.DefaultPartitions)
	}
}

func TestNegativePartitionsRefused(t *testing.T) {
	if _, err := broker.Start(broker.Config{Partitions: -1}); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Fatalf("Start with Partitions -1: %v, want a refusal", err)
	}
}

// An auto-created topic on a persistent broker is saved like any other: it
// and its records are there after a restart on the same data dir.
func TestAutoCreatedTopicPersists(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(broker.Config{DataDir: dir, AutoCreateTopics: true, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "kept", Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b = start(t, broker.Config{DataDir: dir, MinFreeBytes: -1})
	recs := testenv.ReadTopic(t, b.Addr(), "kept")
	if len(recs) != 1 || string(recs[0].Value) != "v1" {
		t.Fatalf("after a restart the auto-created topic holds %d records, want the one produced", len(recs))
	}
}
