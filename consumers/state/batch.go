package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrPartiallyApplied is returned (wrapped) by a Redis batch's Commit when a
// queued command failed inside the atomic step (for example WRONGTYPE: a key
// of another type than the handler writes). Redis does not roll a script
// back, so the commands before it took effect; the same step holds the
// failing command and the rest, in order, in the store, without moving the
// position, and every later commit of the partition applies them first.
// Retrying is therefore safe, and is what the consumer does: nothing is
// applied twice, and the held writes apply, once, as soon as the key is
// fixed. The error names the command and key that failed.
var ErrPartiallyApplied = errors.New("state: batch partially applied")

type txKey struct{}

// recordTx is one record's writes while its handler runs.
type recordTx struct {
	fns  []func()
	pipe redis.Pipeliner // Redis batches only
}

// OnCommit registers fn to run when the batch holding the current record
// commits: after the atomic step, in registration order (with the memory
// store inside it, under the store's lock, before the new position is
// visible). fn does not run if the record's handler fails or the commit
// does. Call it with the context Batch.Do passed to the handler, while the
// handler runs (not from goroutines that outlive it).
func OnCommit(ctx context.Context, fn func()) {
	tx := fromContext(ctx, "OnCommit")
	tx.fns = append(tx.fns, fn)
}

func fromContext(ctx context.Context, what string) *recordTx {
	tx, ok := ctx.Value(txKey{}).(*recordTx)
	if !ok {
		panic("state: " + what + " called with a context that is not a handler's: use the ctx your handler was given")
	}
	return tx
}

// batch is the Batch of every store in this package. It joins the writes of
// each successful record (OnCommit functions, Redis commands) and hands them
// to the store's apply at Commit.
type batch struct {
	lease Lease
	fns   []func()
	cmds  [][]any
	n     int
	// pipe queues a Redis batch's commands; nil for the memory store.
	pipe  redis.Pipeliner
	folds coalescer
	// tx is the handle of the record in hand, reached through txCtx, a
	// child of parent.
	tx     recordTx
	parent context.Context
	txCtx  context.Context
	// apply is the store's atomic step: it checks the lease, applies cmds,
	// runs fns where the store promises, and sets the position to next.
	// taken reports that the store has cmds, applied or held, even when
	// err is not nil: a retry must not send them again.
	apply func(ctx context.Context, next int64, cmds [][]any, fns []func()) (taken bool, err error)
}

func (b *batch) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	// The record's handle and its context are made once per batch (per
	// parent context) and reset for each record: Do is on every event's path.
	b.tx.fns = b.tx.fns[:0]
	if b.txCtx == nil || b.parent != ctx {
		b.tx.pipe = b.pipe
		b.parent, b.txCtx = ctx, context.WithValue(ctx, txKey{}, &b.tx)
	}
	if err := fn(b.txCtx); err != nil {
		if b.pipe != nil {
			b.pipe.Discard()
		}
		return err
	}
	if b.pipe != nil {
		cmds, err := recorded(ctx, b.pipe)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			b.cmds = b.folds.add(b.cmds, c)
		}
	}
	b.fns = append(b.fns, b.tx.fns...)
	b.n++
	return nil
}

func (b *batch) Commit(ctx context.Context, next int64) error {
	taken, err := b.apply(ctx, next, b.cmds, b.fns)
	if taken {
		// A later Commit of the same batch only moves the position (and
		// applies what the store holds of it).
		b.cmds, b.folds = nil, coalescer{}
	}
	if err != nil {
		return fmt.Errorf("state: commit %s of group %s up to offset %d: %w", b.lease.Partition, b.lease.Group, next, err)
	}
	b.fns = nil
	return nil
}

func (b *batch) Len() int { return b.n }
