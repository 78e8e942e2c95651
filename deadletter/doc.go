// Package deadletter is recq's answer to poison events: retry policies,
// error classification, and a dead event queue per consumer group, with
// sequenced parking, redrive and discard (Evento's dead event queues,
// Axon's sequenced dead letters), on Kafka topics.
//
// # Kinds of failure
//
// Classify sorts a handler's error. Transient errors (a dependency is
// down) are retried without limit by default: the partition waits, and an
// outage fills no queue. Permanent errors (the event is bad) are retried
// Policy.Attempts times, then the event is dead. Mark errors with
// Transient and Permanent; unmarked, network errors and deadlines are
// transient, panics and undecodable payloads permanent, anything else
// permanent (a handler that returns an error about an event is believed).
//
// # The topics
//
// For consumer group G:
//
//   - G.dlq, the dead event queue: each dead event is the original record
//     (key, value, headers) plus recq-dlq-* headers: id, group, handler,
//     original topic/partition/offset, reason, error, kind, stack,
//     attempts, generation, first and last failure, and for a parked
//     event the id it waits behind. Records are keyed as the originals,
//     so a key's dead events keep their order.
//   - G.retry: redriven events, which only G consumes.
//   - G.dlq.actions: every decision (redrive, discard, and done when a
//     redriven event succeeded), keyed by event id, with who, why and when.
//
// The queue and the actions are kept without a time limit: a dead event
// waits for a decision however long it takes. A consumer holds every
// entry's metadata (not its payload) in memory.
//
// An event's id is where its original record sits, TOPIC/PARTITION/OFFSET:
// it keeps it through every death and redrive. Its generation counts its
// deaths. Its status comes from its latest generation and the last action
// on it: pending (no decision yet), redriving, redriven, discarded. Index
// holds them; Load reads a group's queue to its end.
//
// # Order: sequenced parking
//
// A consumer with parking on writes a key's later events to the queue as
// parked behind its dead one (Queue.Route), so they are not applied out
// of order. Redrive republishes events in queue order; a redriven event is
// held back only by an earlier pending event of its key, so a key's events
// redriven together are applied in order, and if the first fails again
// the rest are parked again behind it.
//
// A key's parked events are released by the consumer itself once nothing
// holds them back (Index.Releasable): when the dead event they wait for
// is discarded, or redriven and handled, and none of the key's events is
// pending for a failure of its own or being redriven. The consumer
// redrives them, in order, recording the decision as its own (Queue
// release); events of the key that arrived during a redrive are released
// with them. Two consumers may release the same event (their indexes lag
// each other): only the first redrive of a generation counts, and the
// retry records of later ones are skipped, so it is handled once.
//
// A consumer whose positions are lost (a projector on the memory store
// rebuilds on every start) skips the dead originals and applies the
// redriven events again from the retry topic; on such a rebuild a
// redriven event is not ordered against its key's events that came after
// the redrive.
//
// # Exactly once
//
// A consumer writes a dead event (and waits for the broker's ack) before
// it commits past it, and reads the queue to its end (Queue.Sync) on every
// assignment, before it handles records: after a crash between the two,
// the record is found in the queue and skipped, not written again. A
// redrive writes the retry record and its decision in one Kafka
// transaction. A member paused past its session timeout may still add a
// second copy of an entry before it learns it lost the partition; copies
// share the id, and Index keeps the latest generation.
//
// # Concurrency
//
// A Queue belongs to one consumer: Run follows the topics until its
// context ends; Sync, Dead, Done and Index are safe to call concurrently
// with it. An Index is safe for concurrent use. Hooks are called on the
// consumer's goroutines and must not block.
package deadletter
