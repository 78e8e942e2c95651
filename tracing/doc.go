// Package tracing makes one flow one trace: every record recq produces
// carries the W3C trace context (traceparent, tracestate, baggage headers),
// every record it consumes continues it, and each hop is an OpenTelemetry
// span following the messaging semantic conventions (1.27 and later).
//
// # Turning it on
//
// A service calls Setup once, first thing, and defers the shutdown it
// returns (which flushes):
//
//	shutdown, err := tracing.Setup(ctx, tracing.WithServiceName("todo-service"))
//	if err != nil { ... }
//	defer shutdown(context.Background())
//
// Setup reads the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (spans by
// OTLP over HTTP, e.g. http://127.0.0.1:4318), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (e.g. parentbased_traceidratio and 0.01). Without them tracing stays
// off: no span is made, no header added, and recq's hot paths pay one
// atomic load per record. SENTRY_DSN turns it on too (see Sentry below).
//
// # Which span is whose parent
//
// With tracing on, no code of the service's is needed for this tree:
//
//	invoke todo                        CLIENT    Invoker.Send: until the reply
//	└ send todo.commands               PRODUCER  every produced record
//	  └ process todo.commands          CONSUMER  the aggregate runner
//	    ├ todo.Handle(AddItem)         INTERNAL  the command's handler
//	    ├ send todo.events             PRODUCER  each event, in the transaction
//	    │ └ process todo.events        CONSUMER  a projector, observer, saga
//	    │   ├ send ...                 PRODUCER  what the handler publishes
//	    │   └ todo.stats.On(ItemAdded) INTERNAL  an attempt, once one has failed
//	    │     └ send ...               PRODUCER  what a retry publishes
//	    └ send recq.replies            PRODUCER  the reply
//
// A consumed record is one span when its handler succeeds at the first
// attempt, as most do: the process span, which names the handler
// (recq.handler: todo.stats.On(ItemAdded)) and is the parent of what it
// publishes. A span costs more than the rest of an event's handling, so
// an attempt is a span of its own only when it is needed to tell attempts
// apart: a first attempt that fails is recorded when it fails (from its
// start, with its error; what it published stays under the process span),
// and every later attempt is a span from its start.
//
// A process span is the child of its record's send span by default, not
// only linked to it as the conventions prefer for batches: recq handles
// one record per process span, and a parent is what makes a flow one tree
// in Sentry and Jaeger. WithLinks gives the conventions' shape instead,
// each process span the root of its own trace, linked to its producer. A
// record produced with no span in its context (a redrive from the CLI)
// continues the trace its headers already carry.
//
// Spans carry messaging.system, messaging.operation.type and .name,
// messaging.destination.name and .partition.id, messaging.kafka.offset and
// .message.key, messaging.consumer.group.name and messaging.message.id
// (the recq id), with recq.correlation_id, recq.causation_id, recq.type,
// recq.aggregate_id and, on a consumer's process span, recq.handler; a
// failure sets the span's error status, an exception event and
// error.type. A send span gets its attributes when the broker answers,
// all at once with the partition and offset. A handler registered with consumers.Untraced has
// no spans of its own, though what it publishes joins the flow's trace.
//
// # Sentry
//
// SENTRY_DSN (with SENTRY_ENVIRONMENT and SENTRY_RELEASE, read by
// sentry-go) turns tracing on, with or without an OTLP endpoint: sentry-go
// is initialised with its HTTP transport, its OpenTelemetry span processor
// gives Sentry performance the same spans, and its propagator adds the
// sentry-trace and baggage headers to the W3C ones. The shutdown flushes
// Sentry (5s at most, or until its context's deadline).
//
// End is where failures become Sentry events, each once, with the span
// that failed as its trace context. A handler attempt's error (a
// consumer's .On, an aggregate's .Handle) waits for what follows it: the
// next attempt makes it a warning (outcome "retried", one event per
// attempt); the end of its process span with that error makes it the dead
// event's only event (error, outcome "dead"), a recovered panic with the
// panic's stack (an error with a string field Stack, as
// deadletter.PanicError, found by reflection); a command's rejection (the
// process span's recq.rejection) makes it an info event (outcome
// "rejected"). A process span that fails outside a handler (a command's
// batch) is an error (outcome "failed"). Errors of invoke and send spans
// are not captured: Send and Publish return them to the caller. Tags:
// outcome, component (the consumer, aggregate or group), group, handler,
// attempt, topic, partition, offset, payload_type, aggregate_id,
// correlation_id, message_id, command_id (the id of a record of a
// *.commands topic) and rejection.
//
// Payloads are never sent: spans carry ids, types and keys only; events
// carry the error's text, those tags and sentry-go's host and runtime
// context, and no request or user data (SendDefaultPII stays off). Sentry
// sees what OpenTelemetry samples: an error in a trace the sampler dropped
// has no recording span, and is not captured.
//
// # Metrics
//
// WithMetricsAddr (recq's binaries: -metrics-addr; recq dev:
// --metrics-addr) serves Prometheus metrics at /metrics, and
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
// pushes them by OTLP every OTEL_METRIC_EXPORT_INTERVAL; either turns
// metrics on, with tracing on or off:
//
//	messaging.client.sent.messages      every produced record (error.type when refused)
//	messaging.client.consumed.messages  every record a consumer group handled
//	messaging.process.duration          its handling, routing to dead event (error.type)
//	recq.handler.failures, .retries     failed attempts by error kind; those tried again
//	recq.dead_events, recq.redrives     dead (and parked) events by reason; redrives handled
//	recq.command.duration               an invoker's round trip, by outcome (ok, rejected, failed)
//	recq.consumer.lag, .lag.age         per group and partition: records not handled, age of the oldest
//
// Lag is reported by each consumer runner for the partitions it owns (the
// broker's last stable offset, asked at each collection, less the next
// offset; the age is that of the first record of the batch in hand), by
// each aggregate runner for its command partitions (less the committed
// offset), and by recq dev for every group from its committed offsets (no age), so a
// stopped consumer's lag shows there. The components record through the
// package's functions (Consumed, Failed, Dead, Redriven, CommandDone,
// RegisterLag); off, each costs one atomic load.
//
// This package imports no other of recq's: streams installs ProducerHooks
// on every client it builds, and the components start the consumer-side
// spans, saying what each record is through Flow.
package tracing
