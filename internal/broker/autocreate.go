package broker

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultPartitions is the partition count of topics created without one
// (auto-created, or created asking for the broker's default): 1, Apache
// Kafka's num.partitions default.
const DefaultPartitions = 1

// autoCreate makes the broker create the topics a metadata request names
// when the request allows it, as Kafka does with
// auto.create.topics.enable=true (its default).
//
// kfake has such an option, but the topics it creates that way are not
// written to its topics file until some other topic changes, so on a
// persistent broker a kill -9 would lose a topic (and the records
// acknowledged in it). Here the topic is created through kfake's own
// CreateTopic before kfake answers the request, which saves it like a topic
// created by CreateTopics. A control function runs in its own goroutine
// while kfake's loop still serves admin calls, so CreateTopic can be called
// from it.
//
// Only requests that ask create topics: allow_auto_topic_creation is set by
// librdkafka (kcat) and kafkajs producers and by kafkajs consumers, not by
// franz-go unless kgo.AllowAutoTopicCreation is given, nor by most
// consumers and admin tools; metadata requests before v4 have no such field
// and always allow it, as in Kafka. Topics asked for by id, names Kafka
// would refuse and names starting with "__" (Kafka's internal topics) are
// never created.
type autoCreate struct {
	c          *kfake.Cluster
	partitions int32
	log        io.Writer // never nil
}

func installAutoCreate(c *kfake.Cluster, partitions int32, log io.Writer) {
	a := &autoCreate{c: c, partitions: partitions, log: log}
	c.ControlKey(int16(kmsg.Metadata), a.control)
}

// control never handles the request itself (it returns false): kfake
// answers it after the topics exist. Control functions run one at a time.
func (a *autoCreate) control(kreq kmsg.Request) (kmsg.Response, error, bool) {
	req, ok := kreq.(*kmsg.MetadataRequest)
	if !ok || (req.Version >= 4 && !req.AllowAutoTopicCreation) {
		return nil, nil, false
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil || !autoCreatable(*rt.Topic) {
			continue
		}
		err := a.c.CreateTopic(*rt.Topic, a.partitions, nil)
		switch {
		case err == nil:
			a.logf("recq dev: created topic %q (%d partition(s)) because a client asked for it; --auto-create-topics=false turns this off\n", *rt.Topic, a.partitions)
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			// kfake answers the request as for any missing topic.
			a.logf("recq dev: could not auto-create topic %q: %v\n", *rt.Topic, err)
		}
	}
	return nil, nil, false
}

func (a *autoCreate) logf(format string, args ...any) { fmt.Fprintf(a.log, format, args...) }

// autoCreatable reports whether Kafka would accept name as a topic name
// (1 to 249 of [a-zA-Z0-9._-], not "." or "..") and it is not an internal
// one.
func autoCreatable(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." || strings.HasPrefix(name, "__") {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
