// Package aggregates is recq's command side: event-sourced aggregates
// (Evento's Aggregate, Axon's aggregate) defined as plain Go types.
//
// # Defining an aggregate
//
// An aggregate has a name, a state type S and two kinds of handlers,
// registered with generic functions so handlers are typed:
//
//	todo := aggregates.New[TodoList]("todo")
//	aggregates.Create(todo, func(ctx context.Context, c CreateList, s *TodoList) ([]any, error) {...})
//	aggregates.Handle(todo, func(ctx context.Context, c AddItem, s *TodoList) ([]any, error) {...})
//	aggregates.Apply(todo, func(s *TodoList, e ItemAdded) { s.Items = append(s.Items, e.Title) })
//
// A command handler validates and decides: it returns the events the
// command causes, or an error that rejects the command. It must not change
// the state (the fixture fails a test that does): state changes only by
// applying events, so replaying the events always rebuilds the same state.
// An event handler applies one event to the state and cannot fail.
//
// Existence follows Evento: a command registered with Create may run on an
// aggregate that has no events yet (and on one that exists, where the
// handler decides); any other command on a missing aggregate is rejected
// with ErrNotFound. A state whose IsDeleted() reports true marks the
// aggregate deleted, and every later command is rejected with ErrDeleted.
// A command may carry the version it expects (ExpectVersion); a mismatch is
// rejected with ErrConflict before the handler runs.
//
// # Running
//
// On Kafka an aggregate lives in two co-partitioned topics, <name>.commands
// and <name>.events (EnsureTopics), keyed by aggregate id. A Runner, one per
// process and any number per group, handles the commands of the partitions
// it owns exactly once: per polled batch, the events, the replies and the
// command offsets are written in one Kafka transaction, so a killed runner
// leaves either all of a batch or none of it.
//
//	r, _ := aggregates.NewRunner(todo, serde, brokers,
//		aggregates.WithInstanceID(podName), aggregates.WithSnapshots(store, 100))
//	go r.Run(ctx)
//
//	iv, _ := aggregates.NewInvoker(ctx, brokers, serde)
//	res, err := iv.Send(ctx, "todo", "list-1", AddItem{Title: "milk"})
//
// Send waits for the runner's reply, matched by the command id (a UUIDv7,
// or WithCommandID): resending a command with the same id is answered as a
// Duplicate, without new events, so a Send that timed out can be retried
// safely. An aggregate is loaded from its latest snapshot (if any) and the
// events after it in its partition, and kept in an LRU cache.
//
// With metrics on (tracing.Setup), a runner reports its command lag, as a
// consumer runner does: per owned partition of <name>.commands, the
// commands not handled yet (the last stable offset less the group's
// committed offset) and the age of the oldest in hand.
//
// # The event store
//
// The events topic is the event store, and the runner guards it:
//
//   - An aggregate lives in one partition of both topics: the one Kafka's
//     default partitioner (murmur2, streams.KeyPartition) gives its id.
//     Commands that another client placed elsewhere (kcat and librdkafka
//     hash with crc32) are moved there in the transaction that consumes
//     them, and events are written to it explicitly.
//   - The partition count is fixed for life: events record it
//     (HeaderPartitions) and a runner refuses topics whose count differs or
//     changed. Scaling an aggregate is a new topic pair and a copy of its
//     events (docs/ARCHITECTURE.md, "Scaling an aggregate").
//   - The events topic deletes nothing: EnsureTopics creates it with
//     EventsTopicConfigs, and a runner refuses one with a finite retention
//     or compaction unless WithFiniteRetention is given.
//   - A load reads the aggregate's events to the partition's end and waits
//     for its own records in transactions still open (up to LoadWait, then
//     the batch is retried): it never decides on a history that stops
//     short of an event that is, or may yet be, committed.
//
// Run returns an error wrapping ErrTopics, saying what to do, when one of
// these does not hold, at start or (partitions added) within TopicsWatch.
//
// # Testing
//
// aggregatestest.Fixture runs the real handlers without a broker, in Axon's
// given-when-then form:
//
//	aggregatestest.Fixture(t, todo).Given(ListCreated{...}).When(AddItem{...}).Then(ItemAdded{...})
//
// # Concurrency
//
// An Aggregate is safe for concurrent use once defined: register every
// handler before handing it to a runner or a fixture. Handlers of one
// aggregate instance are never called concurrently (the runner owns each
// aggregate's partition alone), so they need no locks.
package aggregates
