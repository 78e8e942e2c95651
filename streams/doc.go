// Package streams is recq's ground floor: the record envelope, message ids,
// correlation through context.Context, publishing, topic and group admin, and
// low-level reading. Every other recq package builds on it; it imports none of
// them.
//
// # The envelope
//
// A recq record is a Kafka record whose key is the aggregate or entity id and
// whose headers carry the envelope (see [Envelope] and the Header* constants):
// the payload type, a UUIDv7 message id, the correlation id of the flow, the id
// of the message that caused this one, the aggregate id and version, the
// reply-to topic, the bounded context, and W3C/Sentry trace context. Call sites
// use [ReadEnvelope] and [Envelope.Write], never raw header strings.
//
// # Correlation and causation
//
// A handler that processes a record puts its envelope into the context with
// [ContextWithMessage]. Every record published with that context is stamped by
// [Stamp]: it gets a fresh message id, the handled message's correlation id and,
// as causation id, the handled message's id. A record published outside any
// handled message starts a new flow: its correlation id is its own id, unless
// [ContextWithCorrelationID] supplied one (for example an HTTP request id).
//
// # Publishing
//
// [Publisher] wraps a franz-go client with idempotence on. [Publisher.Publish]
// is synchronous and reports each record's outcome ([*PublishError] lists the
// failed ones); [Publisher.PublishAsync] calls back per record and batches with
// the client's linger. Publish never returns before every record it was given
// is either acknowledged by the broker or failed: a nil error means every
// record is durable as far as the broker's acks go.
//
// # Reading
//
// [Reader] consumes with or without a consumer group, starting from the
// beginning, the end, an offset or a timestamp ([StartAt]). It is a thin,
// explicit helper: it does not retry handlers or commit by itself; the
// consumers package builds the consumer loop on top of it.
//
// # Concurrency
//
// Publisher, Admin and Reader are safe for concurrent use except where a method
// says otherwise ([Reader.Poll] must be called from one goroutine at a time, as
// with franz-go's PollFetches). Close them to stop their goroutines.
package streams
