package deadletter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names derived from a consumer group.
func Topic(group string) string        { return group + ".dlq" }
func RetryTopic(group string) string   { return group + ".retry" }
func ActionsTopic(group string) string { return group + ".dlq.actions" }

// The headers a dead event carries on top of the original record's.
const (
	HeaderID           = "recq-dlq-id"
	HeaderGroup        = "recq-dlq-group"
	HeaderHandler      = "recq-dlq-handler"
	HeaderTopic        = "recq-dlq-topic"
	HeaderPartition    = "recq-dlq-partition"
	HeaderOffset       = "recq-dlq-offset"
	HeaderReason       = "recq-dlq-reason"
	HeaderError        = "recq-dlq-error"
	HeaderKind         = "recq-dlq-kind"
	HeaderStack        = "recq-dlq-stack"
	HeaderAttempts     = "recq-dlq-attempts"
	HeaderGeneration   = "recq-dlq-generation"
	HeaderFirstFailure = "recq-dlq-first-failure"
	HeaderLastFailure  = "recq-dlq-last-failure"
	HeaderParkedBehind = "recq-dlq-parked-behind"
)

// Reason says why an event is in the dead event queue.
type Reason string

const (
	ReasonHandler     Reason = "handler"     // the handler returned an error
	ReasonPanic       Reason = "panic"       // the handler panicked
	ReasonUndecodable Reason = "undecodable" // the payload does not decode into the handler's type
	ReasonNoType      Reason = "no-type"     // the record has no recq-type header: not a recq event
	ReasonParked      Reason = "parked"      // an earlier event of its key is dead
)

// ID names a dead event: where its original record sits. An event has one
// id however often it dies, is redriven and dies again.
func ID(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
}

// ParseID splits an id made by ID.
func ParseID(id string) (topic string, partition int32, offset int64, err error) {
	i := strings.LastIndexByte(id, '/')
	j := strings.LastIndexByte(id[:max(i, 0)], '/')
	if i < 0 || j < 0 {
		return "", 0, 0, fmt.Errorf("deadletter: id %q: want TOPIC/PARTITION/OFFSET", id)
	}
	p, err1 := strconv.ParseInt(id[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(id[i+1:], 10, 64)
	if err1 != nil || err2 != nil || id[:j] == "" {
		return "", 0, 0, fmt.Errorf("deadletter: id %q: want TOPIC/PARTITION/OFFSET", id)
	}
	return id[:j], int32(p), o, nil
}

// Entry is one dead event as the dead event queue holds it: the original
// record (key, value, headers) and why it is there.
type Entry struct {
	ID        string
	Group     string
	Handler   string // the event type whose handler failed
	Topic     string // where the original record sits
	Partition int32
	Offset    int64
	Reason    Reason
	Kind      Kind
	Error     string
	Stack     string // a panic's stack
	// Attempts counts every handling of the event that failed, over all
	// its deaths and redrives.
	Attempts int
	// Generation is 1 when the event first dies and grows each time it
	// dies again after a redrive (or is parked again behind a key whose
	// dead event failed again).
	Generation   int
	FirstFailure time.Time
	LastFailure  time.Time
	ParkedBehind string // for ReasonParked: the id of the dead event it waits for

	Key     []byte
	Value   []byte
	Headers []kgo.RecordHeader // the original record's, without recq-dlq-*

	// Where this entry sits in the dead event queue; set by ParseEntry.
	QueuePartition int32
	QueueOffset    int64
}

// Record builds the dead event queue's record of e.
func (e *Entry) Record(topic string) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(e.Headers)+15)
	h = append(h, e.Headers...)
	add := func(k, v string) {
		if v != "" {
			h = append(h, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderID, e.ID)
	add(HeaderGroup, e.Group)
	add(HeaderHandler, e.Handler)
	add(HeaderTopic, e.Topic)
	add(HeaderPartition, strconv.Itoa(int(e.Partition)))
	add(HeaderOffset, strconv.FormatInt(e.Offset, 10))
	add(HeaderReason, string(e.Reason))
	if e.Kind != 0 {
		add(HeaderKind, e.Kind.String())
	}
	add(HeaderError, e.Error)
	add(HeaderStack, e.Stack)
	add(HeaderAttempts, strconv.Itoa(e.Attempts))
	add(HeaderGeneration, strconv.Itoa(e.Generation))
	add(HeaderFirstFailure, e.FirstFailure.UTC().Format(time.RFC3339Nano))
	add(HeaderLastFailure, e.LastFailure.UTC().Format(time.RFC3339Nano))
	add(HeaderParkedBehind, e.ParkedBehind)
	return &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value, Headers: h}
}

// ParseEntry reads a record of the dead event queue.
func ParseEntry(r *kgo.Record) (Entry, error) {
	e := Entry{Key: r.Key, Value: r.Value, QueuePartition: r.Partition, QueueOffset: r.Offset}
	var errs []string
	num := func(k, v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q", k, v))
		}
		return n
	}
	when := func(k, v string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q", k, v))
		}
		return t
	}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderID:
			e.ID = v
		case HeaderGroup:
			e.Group = v
		case HeaderHandler:
			e.Handler = v
		case HeaderTopic:
			e.Topic = v
		case HeaderPartition:
			e.Partition = int32(num(h.Key, v))
		case HeaderOffset:
			e.Offset = num(h.Key, v)
		case HeaderReason:
			e.Reason = Reason(v)
		case HeaderKind:
			k, err := ParseKind(v)
			if err != nil {
				errs = append(errs, err.Error())
			}
			e.Kind = k
		case HeaderError:
			e.Error = v
		case HeaderStack:
			e.Stack = v
		case HeaderAttempts:
			e.Attempts = int(num(h.Key, v))
		case HeaderGeneration:
			e.Generation = int(num(h.Key, v))
		case HeaderFirstFailure:
			e.FirstFailure = when(h.Key, v)
		case HeaderLastFailure:
			e.LastFailure = when(h.Key, v)
		case HeaderParkedBehind:
			e.ParkedBehind = v
		default:
			e.Headers = append(e.Headers, h)
		}
	}
	if e.ID == "" {
		errs = append(errs, "no "+HeaderID+" header")
	} else if _, _, _, err := ParseID(e.ID); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return e, fmt.Errorf("deadletter: %s/%d@%d is not a dead event: %s", r.Topic, r.Partition, r.Offset, strings.Join(errs, ", "))
	}
	return e, nil
}

// retryRecord is the record a redrive writes to the retry topic: the
// original record, with the id and counts that let a new failure continue
// the entry.
func (e *Entry) retryRecord(topic string) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(e.Headers)+5)
	h = append(h, e.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: HeaderAttempts, Value: []byte(strconv.Itoa(e.Attempts))},
		kgo.RecordHeader{Key: HeaderGeneration, Value: []byte(strconv.Itoa(e.Generation))},
		kgo.RecordHeader{Key: HeaderFirstFailure, Value: []byte(e.FirstFailure.UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value, Headers: h}
}

// Redriven is what a record of the retry topic says about the entry it
// redrives.
type Redriven struct {
	ID           string
	Attempts     int
	Generation   int
	FirstFailure time.Time
}

// ParseRedriven reads the dead-event headers of a retry topic's record
// (the ones retryRecord writes); a malformed count reads as zero.
func ParseRedriven(r *kgo.Record) (Redriven, bool) {
	e, _ := ParseEntry(r)
	return Redriven{ID: e.ID, Attempts: e.Attempts, Generation: e.Generation, FirstFailure: e.FirstFailure}, e.ID != ""
}
