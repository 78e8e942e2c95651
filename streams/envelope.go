package streams

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of the recq envelope. Ours carry the recq- prefix; standard ones
// keep their standard names so foreign tracers continue the same trace.
const (
	HeaderType             = "recq-type"
	HeaderID               = "recq-id"
	HeaderCorrelationID    = "recq-correlation-id"
	HeaderCausationID      = "recq-causation-id"
	HeaderAggregateID      = "recq-aggregate-id"
	HeaderAggregateVersion = "recq-aggregate-version"
	HeaderReplyTo          = "recq-reply-to"
	HeaderContext          = "recq-context"
	HeaderTraceParent      = "traceparent"
	HeaderTraceState       = "tracestate"
	HeaderBaggage          = "baggage"
	HeaderSentryTrace      = "sentry-trace"
)

// Envelope is the typed view of a record's recq headers. Empty fields (and a
// zero AggregateVersion) mean the header is absent.
type Envelope struct {
	Type             string // payload full name, e.g. todo.TodoItemAdded
	ID               string // message id (UUIDv7)
	CorrelationID    string // id of the flow
	CausationID      string // id of the message that caused this one
	AggregateID      string
	AggregateVersion int64
	ReplyTo          string // topic for the reply to a command
	Context          string // bounded context or tenant
	TraceParent      string
	TraceState       string
	Baggage          string
	SentryTrace      string
}

// fields lists the string fields with their header names, so reading and
// writing walk one table instead of twelve hand-written branches.
func (e *Envelope) fields() [11]struct {
	name string
	val  *string
} {
	return [11]struct {
		name string
		val  *string
	}{
		{HeaderType, &e.Type},
		{HeaderID, &e.ID},
		{HeaderCorrelationID, &e.CorrelationID},
		{HeaderCausationID, &e.CausationID},
		{HeaderAggregateID, &e.AggregateID},
		{HeaderReplyTo, &e.ReplyTo},
		{HeaderContext, &e.Context},
		{HeaderTraceParent, &e.TraceParent},
		{HeaderTraceState, &e.TraceState},
		{HeaderBaggage, &e.Baggage},
		{HeaderSentryTrace, &e.SentryTrace},
	}
}

// fieldOf maps a header name to its index in fields(): one lookup per
// header instead of a comparison with every name.
var fieldOf = func() map[string]int {
	var e Envelope
	m := map[string]int{}
	for i, f := range e.fields() {
		m[f.name] = i
	}
	return m
}()

// ReadEnvelope extracts the envelope from r's headers. Unknown headers are
// ignored. The only malformed input is a non-numeric aggregate version, which
// is reported (the rest of the envelope is still returned).
//
// Consumers call it once per record, so it allocates once: every value is
// copied into one string and the fields are slices of it.
func ReadEnvelope(r *kgo.Record) (Envelope, error) {
	var e Envelope
	fs := e.fields()
	var at [len(fs)]int // 1 + the header index of each field's value; 0: absent
	size := 0
	var err error
	for i, h := range r.Headers {
		if h.Key == HeaderAggregateVersion {
			v, perr := strconv.ParseInt(string(h.Value), 10, 64)
			if perr != nil {
				err = fmt.Errorf("streams: header %s=%q is not an integer: %w", HeaderAggregateVersion, h.Value, perr)
				continue
			}
			e.AggregateVersion = v
			continue
		}
		if j, ok := fieldOf[h.Key]; ok && at[j] == 0 { // the first header of a name wins, as in Header
			at[j] = i + 1
			size += len(h.Value)
		}
	}
	var b strings.Builder
	b.Grow(size)
	var ends [len(fs)]int
	for j, i := range at {
		if i > 0 {
			b.Write(r.Headers[i-1].Value)
		}
		ends[j] = b.Len()
	}
	all, from := b.String(), 0
	for j, f := range fs {
		*f.val, from = all[from:ends[j]], ends[j]
	}
	return e, err
}

// Write sets e's non-empty fields as headers on r, replacing headers of the
// same name and keeping every other header.
func (e Envelope) Write(r *kgo.Record) {
	for _, f := range e.fields() {
		if *f.val != "" {
			SetHeader(r, f.name, *f.val)
		}
	}
	if e.AggregateVersion != 0 {
		SetHeader(r, HeaderAggregateVersion, strconv.FormatInt(e.AggregateVersion, 10))
	}
}

// Header returns the value of the first header named key.
func Header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// SetHeader sets header key to value, replacing the first header of that name.
func SetHeader(r *kgo.Record, key, value string) {
	for i := range r.Headers {
		if r.Headers[i].Key == key {
			r.Headers[i].Value = []byte(value)
			return
		}
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}
