package streams

import "github.com/twmb/franz-go/pkg/kgo"

// keyed is franz-go's default partitioner for one topic. For a record with
// a key it is a pure function of the key (murmur2, as the Java client's
// default), so one value serves every caller concurrently.
var keyed = kgo.StickyKeyPartitioner(nil).ForTopic("")

// KeyPartition is the partition that Kafka's default partitioner (murmur2:
// the Java client, franz-go and recq's publishers) gives key among n
// partitions. Clients with other defaults (librdkafka and kcat hash with
// crc32) place keys elsewhere; recq's command side re-homes what they
// produce to this partition, so a key's records always meet in one place.
func KeyPartition(key []byte, n int) int32 {
	if key == nil {
		key = []byte{} // nil would mean "no key": a random partition
	}
	return int32(keyed.Partition(&kgo.Record{Key: key}, n))
}
