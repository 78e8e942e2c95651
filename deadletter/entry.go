package deadletter

import (
	"errors"
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

// HeaderID names the dead event a record of the queue or of the retry
// topic is (its id, see ID).
const HeaderID = "recq-dlq-id"

// The other headers a dead event carries on top of the original record's,
// all starting with dlqPrefix.
const (
	dlqPrefix          = "recq-dlq-"
	headerGroup        = "recq-dlq-group"
	headerHandler      = "recq-dlq-handler"
	headerTopic        = "recq-dlq-topic"
	headerPartition    = "recq-dlq-partition"
	headerOffset       = "recq-dlq-offset"
	headerReason       = "recq-dlq-reason"
	headerError        = "recq-dlq-error"
	headerKind         = "recq-dlq-kind"
	headerStack        = "recq-dlq-stack"
	headerAttempts     = "recq-dlq-attempts"
	headerGeneration   = "recq-dlq-generation"
	headerFirstFailure = "recq-dlq-first-failure"
	headerLastFailure  = "recq-dlq-last-failure"
	headerParkedBehind = "recq-dlq-parked-behind"
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
	add(headerGroup, e.Group)
	add(headerHandler, e.Handler)
	add(headerTopic, e.Topic)
	add(headerPartition, strconv.Itoa(int(e.Partition)))
	add(headerOffset, strconv.FormatInt(e.Offset, 10))
	add(headerReason, string(e.Reason))
	if e.Kind != 0 {
		add(headerKind, e.Kind.String())
	}
	add(headerError, e.Error)
	add(headerStack, e.Stack)
	add(headerAttempts, strconv.Itoa(e.Attempts))
	add(headerGeneration, strconv.Itoa(e.Generation))
	add(headerFirstFailure, e.FirstFailure.UTC().Format(time.RFC3339Nano))
	add(headerLastFailure, e.LastFailure.UTC().Format(time.RFC3339Nano))
	add(headerParkedBehind, e.ParkedBehind)
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
		case headerGroup:
			e.Group = v
		case headerHandler:
			e.Handler = v
		case headerTopic:
			e.Topic = v
		case headerPartition:
			e.Partition = int32(num(h.Key, v))
		case headerOffset:
			e.Offset = num(h.Key, v)
		case headerReason:
			e.Reason = Reason(v)
		case headerKind:
			k, err := ParseKind(v)
			if err != nil {
				errs = append(errs, err.Error())
			}
			e.Kind = k
		case headerError:
			e.Error = v
		case headerStack:
			e.Stack = v
		case headerAttempts:
			e.Attempts = int(num(h.Key, v))
		case headerGeneration:
			e.Generation = int(num(h.Key, v))
		case headerFirstFailure:
			e.FirstFailure = when(h.Key, v)
		case headerLastFailure:
			e.LastFailure = when(h.Key, v)
		case headerParkedBehind:
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
		kgo.RecordHeader{Key: headerAttempts, Value: []byte(strconv.Itoa(e.Attempts))},
		kgo.RecordHeader{Key: headerGeneration, Value: []byte(strconv.Itoa(e.Generation))},
		kgo.RecordHeader{Key: headerFirstFailure, Value: []byte(e.FirstFailure.UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value, Headers: h}
}

// Redriven is what a record of the retry topic says about the entry it
// redrives.
type Redriven struct {
	ID string
	// Topic, Partition and Offset are where the event was first written
	// (its id, parsed).
	Topic        string
	Partition    int32
	Offset       int64
	Attempts     int
	Generation   int
	FirstFailure time.Time
}

// ParseRedriven reads the dead-event headers of a retry topic's record
// (the ones retryRecord writes); a malformed count reads as zero.
func ParseRedriven(r *kgo.Record) (Redriven, bool) {
	e, _ := ParseEntry(r)
	d := Redriven{ID: e.ID, Attempts: e.Attempts, Generation: e.Generation, FirstFailure: e.FirstFailure}
	var err error
	d.Topic, d.Partition, d.Offset, err = ParseID(e.ID)
	return d, err == nil
}

// Failure is what a consumer knows of a record that failed for good (or
// is parked); NewEntry takes the rest from the record.
type Failure struct {
	Handler  string // the event type whose handler failed
	Reason   Reason
	Err      error  // nil for a parked record
	Attempts int    // the failed handlings of this generation
	Behind   string // ReasonParked: the dead event it waits for
	// Redriven: the record is a redrive of this entry, which keeps its id
	// and counts on.
	Redriven Redriven
}

// NewEntry is the dead event queue's entry for rec, dead (or parked) in
// group as f says, at now. It is the one way entries are made.
func NewEntry(rec *kgo.Record, group string, f Failure, now time.Time) *Entry {
	d := f.Redriven
	e := &Entry{
		ID: d.ID, Group: group, Handler: f.Handler, Topic: d.Topic, Partition: d.Partition, Offset: d.Offset,
		Reason: f.Reason, ParkedBehind: f.Behind,
		Attempts: d.Attempts + f.Attempts, Generation: d.Generation + 1,
		FirstFailure: d.FirstFailure, LastFailure: now.UTC(),
		Key: rec.Key, Value: rec.Value,
	}
	if e.ID == "" {
		e.ID, e.Topic, e.Partition, e.Offset = ID(rec.Topic, rec.Partition, rec.Offset), rec.Topic, rec.Partition, rec.Offset
	}
	if e.FirstFailure.IsZero() {
		e.FirstFailure = e.LastFailure
	}
	if f.Err != nil {
		e.Kind, e.Error = Classify(f.Err), f.Err.Error()
		var pe *PanicError
		if errors.As(f.Err, &pe) {
			e.Stack = pe.Stack
		}
	}
	for _, h := range rec.Headers {
		if !strings.HasPrefix(h.Key, dlqPrefix) {
			e.Headers = append(e.Headers, h)
		}
	}
	return e
}
