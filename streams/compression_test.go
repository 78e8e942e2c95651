package streams_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// batchCodecs fetches partition 0 of topic from offset 0 with a raw Fetch
// request, as any client sees it on the wire, and returns the compression
// codec of every record batch (the low 3 bits of its attributes: 0 none,
// 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func batchCodecs(t *testing.T, addr, topic string) []int16 {
	t.Helper()
	ctx := ctxT(t)
	cl := testenv.Client(t, addr)
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || topics[topic].Err != nil {
		t.Fatalf("list topic %s: %v %v", topic, err, topics[topic].Err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 16 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topics[topic].ID // by name before v13, by id after
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 0, 16<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s: answer for %d topics", topic, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s: error code %d", topic, p.ErrorCode)
	}
	var codecs []int16
	for raw := p.RecordBatches; len(raw) > 0; {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatalf("fetch %s: record batch %d: %v", topic, len(codecs), err)
		}
		codecs = append(codecs, b.Attributes&0x07)
		raw = raw[12+int(b.Length):] // FirstOffset and Length precede what Length counts
	}
	return codecs
}

// WithCompression sets the codec of the batches the publisher writes, for
// every name ParseCompression accepts; without it batches are snappy,
// franz-go's default (which plain kafkajs cannot read).
func TestWithCompressionSetsTheBatchCodec(t *testing.T) {
	addr := testenv.Kafka(t)
	want := map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4, "default": 2}
	for _, name := range append(slices.Clone(streams.Compressions), "default") {
		t.Run(name, func(t *testing.T) {
			var opts []streams.PublisherOption
			if name != "default" {
				codec, err := streams.ParseCompression(name)
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, streams.WithCompression(codec))
			}
			topic := "compressed-" + name
			testenv.Topic(t, addr, topic, 1)
			p := newPublisher(t, addr, opts...)
			// franz-go sends a batch uncompressed when compressing would not
			// shrink it, so the values must compress.
			var recs []*kgo.Record
			for i := range 20 {
				recs = append(recs, &kgo.Record{Topic: topic, Value: bytes.Repeat(fmt.Appendf(nil, "event %d ", i), 100)})
			}
			if err := p.Publish(ctxT(t), recs...); err != nil {
				t.Fatal(err)
			}
			codecs := batchCodecs(t, addr, topic)
			if len(codecs) == 0 {
				t.Fatal("no record batch fetched")
			}
			for i, c := range codecs {
				if c != want[name] {
					t.Fatalf("batch %d of %d has codec %d, want %d (%s)", i, len(codecs), c, want[name], name)
				}
			}
			// And franz-go reads every codec back.
			got := testenv.ReadTopic(t, addr, topic)
			if len(got) != len(recs) || !bytes.Equal(got[7].Value, recs[7].Value) {
				t.Fatalf("read back %d records, want %d equal to those published", len(got), len(recs))
			}
		})
	}
}

func TestParseCompression(t *testing.T) {
	for _, name := range streams.Compressions {
		if _, err := streams.ParseCompression(name); err != nil {
			t.Errorf("ParseCompression(%q): %v", name, err)
		}
	}
	_, err := streams.ParseCompression("brotli")
	if err == nil || !strings.Contains(err.Error(), `unknown compression "brotli"`) || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("ParseCompression(brotli) = %v, want an error naming the accepted ones", err)
	}
}
