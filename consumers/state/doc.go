// Package state holds consumer-state stores: where a projector keeps, per
// consumer group and partition, the offset of the next record to handle,
// and through which it writes its read model so that both move together.
//
// # Contract
//
//   - Claim makes the caller the partition's owner. It raises the
//     partition's epoch and returns it in a Lease with the stored position
//     (NoPosition if the group never committed the partition).
//   - Begin starts a Batch under a lease. Batch.Do runs one record's
//     handling with a context through which the handler writes; if it
//     fails, that record's writes are dropped and nothing else changes.
//   - Batch.Commit applies the joined writes and sets the position, in one
//     atomic step, only if the lease's epoch is still the partition's:
//     otherwise it fails with ErrFenced and applies nothing. A member that
//     lost its partition (a zombie after a session timeout) can therefore
//     never write over its successor. A commit is idempotent under its
//     lease: if the position already covers it (an earlier attempt whose
//     reply was lost), it succeeds without applying again.
//   - OnCommit functions run after a successful commit, in order.
//
// # Stores
//
// NewMemory keeps everything in process memory; writes are OnCommit
// functions, run inside the atomic step. A process starts with no
// positions, so an in-memory read model is rebuilt from the beginning on
// every start, which is exactly right for it.
//
// NewRedis keeps each group's epochs and positions in one hash,
// <prefix><group>, with fields epoch:<topic>:<partition> and
// next:<topic>:<partition> (topic names cannot contain ':'). Handlers queue
// writes on Redis(ctx), a go-redis Pipeliner whose commands are recorded,
// not sent; Commit sends one Lua script with the epoch check, every
// queued command and the new position: one round trip per batch. Queued
// commands' results are never filled in: read the model with your own
// client, outside handlers. Commands that cannot run in a script
// (MULTI, EVAL, blocking pops, SELECT, ...) are refused at Do.
//
// Redis does not roll back a script that fails half-way. A queued command
// that fails when run (WRONGTYPE: a key of another type) leaves the
// commands before it applied and the position unmoved; Commit then returns
// ErrPartiallyApplied, and retrying would apply those commands twice, so
// the consumer stops and says which command failed. Since the script
// touches the handlers' keys as well as the store's, the Redis store needs
// a single Redis (or one primary), not Redis Cluster.
//
// statetest is the conformance suite both stores pass.
package state
