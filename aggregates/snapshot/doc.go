// Package snapshot stores aggregate snapshots, which bound how much of an
// aggregate's history the runner replays when it loads the aggregate.
//
// Kafka is the event store: an aggregate's history is the records with its
// id as key in one partition of <aggregate>.events. A snapshot is a cache of
// the fold of that history up to some event. Loading an aggregate is "its
// snapshot, then its events after the snapshot's offset in that partition";
// without a snapshot, the events from the partition's start. So a snapshot
// store is never the source of truth: a lost, expired or unreachable
// snapshot only makes a load slower, never wrong.
//
// # Snapshot
//
// A [Snapshot] names its aggregate (the aggregate type's name and the
// aggregate's id), holds the serialized state (opaque bytes: the store never
// looks inside), the aggregate version it covers (the number of events
// applied, so at least 1) and the partition and offset of the last event it
// covers in the event topic. TakenAt is informational.
//
// # Store
//
// A [Store] holds at most one snapshot per aggregate and is safe for
// concurrent use, also by several processes sharing one backend (Redis):
//
//   - Load returns the aggregate's snapshot, or an error wrapping
//     [ErrNotFound] if it has none.
//   - Save stores a snapshot unless the store already holds one of a higher
//     version for that aggregate; then Save does nothing and returns nil. An
//     equal version overwrites (saving the same snapshot twice is harmless).
//   - Delete removes the aggregate's snapshot; deleting a missing one is not
//     an error.
//
// Save is conditional because writers race. The runner writes a snapshot
// only after the Kafka transaction that produced its events committed, but
// writes are asynchronous and a partition can move between runners in a
// rebalance: a slow writer of version 10 can reach the store after the new
// owner of the partition wrote version 12. Letting the older write win would
// not be wrong (the newer events are replayed after it), but it would throw
// away work and, repeated, keep loads slow. The older write is not an error
// either: its writer did nothing wrong and has nothing to retry. The check
// and the write are one atomic step, so no interleaving of Saves leaves an
// older snapshot behind a newer one.
//
// # Errors
//
// Every operation honours its context (a cancelled context is an error) and
// rejects a malformed key: an empty aggregate name or id, or an aggregate
// name containing ':' (aggregate names are Kafka topic name prefixes, which
// never contain it, and the Redis key relies on that). Save also rejects a
// snapshot with a version below 1 or a negative partition or offset.
// Backend errors are returned wrapped, saying what failed and where; they
// are transient for the caller, which may retry (a later Save supersedes a
// failed one anyway) or rebuild the aggregate from its events, which a
// snapshot only shortcuts.
//
// # Implementations
//
// [NewMemory] keeps snapshots in the process (development, tests, and a
// single runner that accepts replaying after a restart). [NewRedis] keeps
// them in Redis, shared by every runner of the aggregate. Both pass the one
// conformance suite in package snapshottest, which any new implementation
// must pass too.
package snapshot
