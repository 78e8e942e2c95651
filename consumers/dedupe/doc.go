// Package dedupe holds the stores that make an observer's at-least-once
// delivery effectively once: they remember, per consumer group (the scope),
// the ids of the events already handled.
//
// # Contract
//
//   - Seen reports, for each id in order, whether it was marked in the scope
//     and has not expired. One round trip for any number of ids.
//   - Mark remembers ids in the scope for the store's TTL.
//   - Scopes are independent: an id marked in one is unseen in another.
//
// The consumer asks Seen once per batch, skips what was seen, and marks each
// event right after its handler succeeds. A crash between a side effect and
// its Mark repeats that one side effect after the restart; no event is ever
// skipped without having been handled. An id is remembered for the TTL
// (default 24h), which must exceed the longest redelivery you expect (how
// far back a restarted consumer can rewind: its uncommitted window, or a
// group reset).
//
// NewMemory forgets everything when the process ends, so it dedupes only
// redeliveries within one process (rebalances); NewRedis survives restarts
// and is shared by every member of the group.
package dedupe

import "context"

// Store remembers handled event ids per scope.
type Store interface {
	Seen(ctx context.Context, scope string, ids ...string) ([]bool, error)
	Mark(ctx context.Context, scope string, ids ...string) error
}
