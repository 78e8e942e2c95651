// Package sagas runs sagas (Evento's @Saga, Axon's sagas and deadlines):
// process managers that make aggregates agree, "ship the order only once
// it is paid; cancel it if the payment has not arrived in 15 minutes".
//
// # Defining
//
// A saga is a name, a version and a state type, with event handlers that
// each find their instance by an association, and deadline handlers:
//
//	s := sagas.New[Fulfilment]("shop", "fulfilment", 1, "shop.orders.events", "shop.payments.events")
//	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.OrderID }), placed)
//	sagas.On(s, sagas.By("order", func(e PaymentReceived) string { return e.OrderID }), paid)
//	sagas.OnDeadline(s, "payment-due", late)
//
// An association is "key=value". A Start handler creates an instance when
// none has the association; its id is that association ("order=O-17"),
// and is never reused: once the instance ended, its start event starts
// nothing again. An event of an On handler that no instance has is
// skipped. A handler changes Instance.State in place, and may Associate
// and Dissociate (an order saga that later answers to its payment id),
// Schedule and Cancel deadlines, Send commands and End. What it did
// counts only if it returns nil; otherwise the event is retried and, when
// it fails for good, goes to the dead event queue, and the instance's
// later events wait behind it (parking, on by default). An event whose
// association function panics or returns "" is dead with the reason, never
// skipped.
//
// # Running: one writer per instance, in order
//
// NewRunner(saga, serde, brokers, invoker, opts...).Run(ctx) joins the
// group <app>.<name>.v<version> on the saga's topics and its routed
// topic, <group>.routed. An event is handled in two steps:
//
//  1. routing: the member owning the event's partition reads its
//     association and produces it, unchanged (headers, timestamp), to the
//     routed topic keyed by the association;
//  2. handling: the member owning that partition of the routed topic finds
//     the instance (by id, or through the association index for an
//     association added later, in which case the event is forwarded once
//     more, keyed by the instance's id, to the instance's partition) and
//     runs the handler.
//
// An instance's home is the routed partition of its id, so one member
// handles it at a time, and the events of one association from one source
// partition reach it in their order. Its state, the association index, its
// deadlines and the group's positions are written in one atomic step of
// the saga store (store.NewRedis, or store.NewMemory by default), fenced
// like a projector's: a member that lost the partition applies nothing.
// Routing produces before the position moves (the commit waits for the
// broker's acknowledgement), so a crash routes an event again rather than
// losing it; an instance knows every event it handled by its source
// partition and offset, so a copy is skipped.
//
// On memory stores a start rebuilds every instance from the topics,
// running the handlers again; what they send carries the same command ids
// and is applied once. A new version of a saga rebuilds the same way:
// command ids do not depend on the version.
//
// # Once-only effects
//
// Instance.Send derives the command id from the saga's name, the instance,
// the record being handled and the Send's number in the handler, so a
// handler run again after a failure, a crash or a rebuild sends the same
// ids, and the aggregate runner, which dedupes by command id, applies each
// once. A rejection is returned to the handler as an error
// (errors.Is the aggregates sentinels, *aggregates.RejectedError) to react
// to, typically by compensating; a missing answer (WithSendTimeout) is an
// error the handler returns so that it is retried.
//
// # Deadlines
//
// Instance.Schedule(name, d) sets a deadline due d after Instance.Now, the
// time of the event being handled (not the wall clock), so the same events
// give the same due times on every rebuild and version. Pending deadlines
// live in the instance, and therefore survive restarts, rebalances and
// rebuilds. Each member keeps a timer heap of the deadlines of the routed
// partitions it owns, loaded from the store on every claim and kept up to
// date by its commits. When one is due, the member produces a firing
// record to the instance's routed partition; handled like any record, it
// runs the deadline's handler if the deadline is still pending, and a
// second firing (a member killed after producing it) is a no-op. Timers
// are armed only once the member has caught up with its topics after it
// started, and before it fires the deadlines due by a time the member
// waits (up to 5 s) until the group has handled what its topics held then:
// every event written before the deadline was due is routed first, and
// its routed copy comes before the firing in the instance's partition,
// however far routing lags. An event whose time is after a pending
// deadline's due time
// finds that deadline fired first, however late it is handled: a payment
// made after the deadline is late even if the saga was down when it came.
// A deadline's handler runs with Now set to its due time.
//
// # Inspecting
//
// `recq sagas list NAME` and `recq sagas show NAME ID` read the Redis
// store, or a runner's InspectHandler over HTTP. Package sagastest runs a
// saga's handlers in given-when-then form with a fake clock.
//
// # Concurrency
//
// Define a saga and register its handlers before NewRunner. Handlers of
// one routed partition are called one at a time (while a handler waits
// for a command's answer, its partition waits); different partitions run
// concurrently.
package sagas
