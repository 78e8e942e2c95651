package state

import (
	"context"
	"errors"
	"fmt"
)

// ErrFenced is returned (wrapped) by Batch.Commit when the partition was
// claimed again after the lease was taken: another consumer owns it now and
// nothing of the batch was applied.
var ErrFenced = errors.New("state: partition claimed by a newer owner")

// Partition names one partition of one topic.
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// NoPosition is Lease.Next when the group has never committed the partition.
const NoPosition int64 = -1

// Lease is one owner's claim on a partition for a consumer group.
type Lease struct {
	Group     string
	Partition Partition
	// Epoch orders the claims of a partition: each Claim takes a higher
	// one, and only the latest lease can commit.
	Epoch int64
	// Next is the offset of the first record not yet handled, or
	// NoPosition. The effects of every record below it are applied, or held
	// by the store when Pending.
	Next int64
	// Pending reports that writes of records below Next are held by the
	// store, not yet applied: a write failed half-way through a commit
	// (ErrPartiallyApplied). The next Commit under the lease applies them
	// first; until they apply, Positions reports the position before them.
	Pending bool
}

// Store keeps, per consumer group and partition, the next offset to process
// and the epoch of the latest claim, and applies a batch's read model writes
// with the new offset in one atomic step. The package documentation states
// the contract; statetest checks it.
type Store interface {
	// Claim makes the caller the partition's owner: it raises the epoch, so
	// every earlier lease's commits fail with ErrFenced, and returns the
	// stored position (past any held writes: see Lease.Pending).
	Claim(ctx context.Context, group string, p Partition) (Lease, error)
	// Begin starts an empty batch under l. Nothing reaches the store
	// before Commit.
	Begin(l Lease) Batch
	// Positions returns the next offset of every partition the group has
	// committed, up to which every write is applied (held writes do not
	// count until they apply).
	Positions(ctx context.Context, group string) (map[Partition]int64, error)
}

// Batch collects the writes of a run of records of one partition.
type Batch interface {
	// Do runs fn, one record's handling, with a context through which the
	// store's write handle is reached (OnCommit, and store-specific
	// accessors such as Redis). If fn returns nil its writes join the batch;
	// otherwise they are dropped and the error is returned, so a failed
	// record leaves nothing behind.
	Do(ctx context.Context, fn func(ctx context.Context) error) error
	// Commit applies the joined writes and sets the partition's next offset
	// to next, atomically, if the lease is still the latest (an error
	// wrapping ErrFenced otherwise, with nothing applied). It first applies
	// the writes an earlier commit left held (Lease.Pending), if any. After
	// a failed commit that is not ErrFenced the batch may be committed
	// again, and is applied once. Then OnCommit functions run, in the order
	// they were registered.
	Commit(ctx context.Context, next int64) error
	// Len is the number of records whose writes joined the batch.
	Len() int
}
