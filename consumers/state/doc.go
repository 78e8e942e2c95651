// Package state holds consumer-state stores: where a projector keeps, per
// consumer group and partition, the offset of the next record to handle,
// and through which it writes its read model so that both move together.
//
// # Contract
//
//   - Claim makes the caller the partition's owner. It raises the
//     partition's epoch and returns it in a Lease with the stored position
//     (NoPosition if the group never committed the partition). The effects
//     of the records below it are applied, or held by the store
//     (Lease.Pending, below): they are never handled again.
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
//   - A commit whose step fails half-way (ErrPartiallyApplied) never
//     applies a write twice: the writes not applied are held by the store,
//     in order, and the next commit of the partition, under the latest
//     lease, applies them first, then its own. Positions reports the
//     position they leave off at only once they applied.
//   - OnCommit functions run after a successful commit, in order.
//
// # Stores
//
// NewMemory keeps everything in process memory; writes are OnCommit
// functions, run inside the atomic step. A process starts with no
// positions, so an in-memory read model is rebuilt from the beginning on
// every start, which is exactly right for it. Its step is one critical
// section of Go code that cannot fail half-way: it never holds writes.
//
// NewRedis keeps each group's epochs and positions in one hash,
// <prefix><group>, with fields epoch:<topic>:<partition> and
// next:<topic>:<partition> (topic names cannot contain ':'). Handlers queue
// writes on Redis(ctx), a go-redis Pipeliner whose commands are recorded,
// not sent; Commit sends one Lua script with the epoch check, every
// queued command and the new position: one round trip per batch. Queued
// commands' results are never filled in: read the model with your own
// client, outside handlers. Commands that cannot run in a script
// (MULTI, EVAL, blocking pops, SELECT, ...) are refused at Do, and so is a
// command of more than 7,000 arguments (split it).
//
// Redis does not roll back a script that fails half-way. A queued command
// that fails when run (WRONGTYPE: a key of another type than the handler
// writes) leaves the commands before it applied. The same script, still
// atomic, then holds the failing command and those after it, in order,
// packed with cmsgpack, in the field pending:<topic>:<partition> with the
// batch's position, and leaves next:<topic>:<partition> where it was;
// Commit returns ErrPartiallyApplied naming the command, the key and the
// Redis error. Every later commit of the partition checks the epoch (an
// old lease applies nothing, held writes included), then runs the held
// commands first: if one fails again only it and those after it stay held,
// and the commit's own commands are not run; once all succeed the field is
// deleted, next is set to the held batch's position, and the commit goes
// on with its own commands, if it is a later batch (a retry of the same
// batch has no more to do: its commands are not sent again, and a resent
// copy is ignored). Claim returns the held batch's position as Lease.Next,
// with Lease.Pending set, so a restart does not handle those records
// again. Nothing of this costs a commit that does not fail: the script
// reads the epoch, the position and the held field in one HMGET.
//
// Since the script touches the handlers' keys as well as the store's, the
// Redis store needs a single Redis (or one primary), not Redis Cluster.
//
// statetest is the conformance suite both stores pass.
package state
