// Package consumers is recq's read side: projectors, projections and
// observers (Evento's components of the same names) on Kafka consumer
// groups.
//
// # Defining
//
// A projector builds a read model from events; an observer performs side
// effects. Both are a named, versioned set of typed handlers over event
// topics:
//
//	stats := consumers.NewProjector("todo", "stats", 1, "todo.events")
//	consumers.On(stats, func(ctx context.Context, e todo.ItemAdded, md consumers.Metadata) error {
//		state.Redis(ctx).HIncrBy(ctx, md.Group+":"+md.AggregateID(), "items", 1)
//		return nil
//	})
//
// Metadata carries the record's place (Group, Topic, Partition, Offset,
// Time) and, read from the record only when asked for, its Key and
// envelope (ID, CorrelationID, CausationID, AggregateID, AggregateVersion,
// Envelope). A record whose recq-type has no handler is skipped from
// its header alone, without decoding. The handler's context carries the
// event (streams.MessageFromContext), so records it publishes continue the
// event's flow: same correlation id, the event's id as causation. That
// context is valid while the handler runs.
//
// The group is <app>.<name>.v<version>. A new projector group starts at the
// beginning of its topics and a new observer group at their head. Bumping a
// projector's version therefore rebuilds its read model from the beginning;
// key the model by Metadata.Group so the new version does not mix with the
// old, and delete the old keys when the new version is live.
//
// # Running, and exactly once
//
// NewRunner(consumer, serde, brokers, opts...).Run(ctx) joins the group.
// Partitions are handled in parallel, each in order (so each aggregate's
// events in order), in batches: the records of one partition in one poll,
// at most WithMaxPollRecords per poll, which with franz-go's bounded fetch
// buffer bounds memory under any backlog. A poll's commits run while the
// next poll is handled; a partition's batches commit in order.
//
// A projector's position lives in a state.Store (WithStore), not in Kafka:
// a batch's read model writes and the partition's next offset are applied
// in one atomic step (one Redis round trip with state.NewRedis), and on
// assignment the runner claims the partition, which raises its epoch so a
// member that lost the partition can no longer commit. On assignment it
// seeks to the stored position. Together these make a projector's effects
// exactly once across crashes and rebalances. A handler writes only through
// the store's handle in ctx: state.Redis(ctx) queues Redis commands,
// state.OnCommit(ctx, fn) runs fn when the batch commits (with the default
// memory store, inside the atomic step). Writing elsewhere directly is
// at-least-once.
//
// The default store is state.NewMemory(): positions in process memory, so
// every start rebuilds the model from the beginning (right for in-memory
// read models). WithKafkaOffsets keeps positions as Kafka group offsets
// instead: at-least-once, so handlers must be idempotent, since events
// after the last commit are handled again after a crash.
//
// An observer's delivery is at-least-once on Kafka offsets, made
// effectively once by a dedupe store keyed by the event id (WithDedupe;
// memory by default, dedupe.NewRedis to survive restarts): events already
// marked are skipped, and an event is marked right after its handler
// succeeds, so a crash between the two repeats one side effect, never loses
// one. Copies of one event (a re-published record keeps its recq-id) in
// one poll, in one partition's batch or in several, are handled (or
// dead-lettered) once: the first one taken is, the others are skipped as
// seen. Copies that reach different members at the same moment can both be
// handled: the store is asked before a handler and marked after it.
//
// Kafka offsets trail every commit in both modes, so `recq groups describe`
// shows a projector's lag too; with a store they are informational.
//
// # Failures
//
// A failing handler is retried under its policy (consumers.Retry for one
// handler, WithRetryPolicy for the runner; deadletter.Policy), with
// exponential backoff and jitter, while its partition waits. What happens
// next depends on the error's kind (deadletter.Classify; mark your own
// with deadletter.Transient and deadletter.Permanent):
//
//   - transient (a dependency is down: network errors, deadlines): retried
//     without limit by default, so an outage dead-letters nothing and
//     skips nothing;
//   - permanent (the event is bad: a handler's error, a panic recovered
//     with its stack, a payload that does not decode, a record without a
//     recq-type header): after the policy's attempts (3; undecodable at
//     once) the event goes to the group's dead event queue, <group>.dlq,
//     and the partition moves on.
//
// With parking (on for projectors, WithParking), a key's later events wait
// in the queue behind its dead one, so a read model never applies a key's
// events out of order. `recq dlq redrive` sends dead events back through
// <group>.retry, which the runner consumes with its topics: a redriven
// event that succeeds is done, and the runner then releases the events
// parked behind it (also after a discard), in order; one that fails again
// returns to the queue with its attempts counted on. The queue is written
// before the batch commits and read back on every assignment, so a crash
// between the two leaves each dead event there once. See package
// deadletter. WithoutDeadLetters turns the queue off: a permanent failure
// is then retried until it succeeds.
//
// A failed store commit (Redis down) is retried the same way without
// limit (WithRetryBackoff); nothing is committed past an event that has not
// been applied or dead-lettered. Status reports what is being retried, and
// the log says it. So is a Redis batch whose script failed half-way
// (state.ErrPartiallyApplied, e.g. a handler writing a key some other
// client made of another type): the store holds the writes that did not
// apply and applies them, once, before anything else of the partition, as
// soon as they succeed, so the fix is to correct or delete the key the
// error names; the runner need not be restarted. A runner that claims a
// partition with writes held (a restart, a rebalance) resumes after them,
// shows the partition Pending in Status and applies them even if no new
// record comes; until they apply, the partition is not at the head for
// Ready, WaitHead and CatchUp. While a commit is retried the member's
// later commits wait for it (a poll's commits start once the previous
// poll's have landed), and so does a rebalance.
//
// A member whose commit is fenced (another member claimed the partition:
// it was paused past its session timeout) asks the group coordinator
// whether the partition is still assigned to it. A paused member is not
// listed any more: it handles no more of the partition and waits for
// franz-go to take it away, so its successor is never fenced in turn.
// Still listed (the store lost its data), it claims the partition again
// before its next poll and reads on from the stored position; batches
// fetched before that are dropped, as they could start past it. Nothing
// of such a zombie's batch is applied, but before its commit is fenced it
// may write to the dead event queue an event of the batch that died again
// and that its successor wrote already: the queue's produce is not fenced
// by the store's epoch. The queue topic then holds two raw copies of the
// entry, with the same id and generation, so the queue's index (recq dlq
// list, redrive, discard, parking) sees one; only a raw read of
// <group>.dlq shows both. Fencing that produce would take a transactional
// producer per partition.
//
// # Rebalances and shutdown
//
// A rebalance waits until the batches in hand are handled and committed
// (franz-go's BlockRebalanceOnPoll), so no work is lost or repeated when
// partitions move. When Run's context ends, the batch in hand is finished
// (handlers get a context that is not canceled; retries stop), offsets are
// committed and the member leaves the group. A static member
// (WithInstanceID) does not leave: its restart within the session timeout
// gets its partitions back without a rebalance.
//
// # Reading
//
// WaitHead waits until the runner reached the head of its topics (the last
// stable offset of each owned partition when it was assigned). Ready says
// the runner is doing its work now: at the head, reaching the broker, and
// retrying nothing (Status.Reason says why not); health.Handler(runners...)
// serves /livez, /readyz and /status.
// A Projection answers typed queries (Query, Ask, and Handler over HTTP);
// Consistent() makes a query wait until the projector has handled every
// event committed before it (CatchUp), which gives read-your-writes after
// aggregates.Invoker.Send.
//
// # Tracing and logs
//
// With tracing on (tracing.Setup), each record is a "process <topic>" span,
// the child of its producer's send span, through its routing, attempts and
// dead event; it names its handler (recq.handler, "todo.stats.On(ItemAdded)"),
// and what the handler publishes continues the trace. A record handled at
// the first attempt is that one span; once an attempt fails, it and each
// later attempt are spans of their own under it, named after the handler.
// Untraced() opts a hot handler out of both. The runner's log
// lines about a record carry its correlation_id, causation_id and
// message_id, and its trace_id and span_id when tracing is on
// (streams.Logger wraps the runner's logger).
//
// # Concurrency
//
// Define a Consumer and register its handlers before NewRunner. Handlers of
// one partition are called one at a time; handlers of different partitions
// run concurrently, so shared read model state needs its own locking.
// Runner methods other than Run are safe to call concurrently with Run.
package consumers
