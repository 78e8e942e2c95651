package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) by Load when the aggregate has no
// snapshot.
var ErrNotFound = errors.New("snapshot: not found")

// Snapshot is an aggregate's state as of one event.
type Snapshot struct {
	Aggregate string // the aggregate type's name
	ID        string // the aggregate's id (the event records' key)
	Version   int64  // events applied to State; at least 1
	State     []byte // serialized state, opaque to the store; nil and empty are the same
	Partition int32  // the event topic partition holding the aggregate's events
	Offset    int64  // offset of the last event State covers
	TakenAt   time.Time
}

// Store keeps the latest snapshot of each aggregate. The package
// documentation states the contract; snapshottest checks it.
type Store interface {
	// Load returns the aggregate's snapshot or an error wrapping ErrNotFound.
	Load(ctx context.Context, aggregate, id string) (Snapshot, error)
	// Save stores s unless a snapshot of a higher version is stored; that
	// case is a no-op, not an error.
	Save(ctx context.Context, s Snapshot) error
	// Delete removes the aggregate's snapshot, if any.
	Delete(ctx context.Context, aggregate, id string) error
}

// checkKey rejects keys no aggregate has. ':' in the aggregate name would
// make Redis keys ambiguous ("a:b" + "c" and "a" + "b:c"); ids may hold any
// character because they come last in the key.
func checkKey(aggregate, id string) error {
	switch {
	case aggregate == "":
		return errors.New("snapshot: empty aggregate name")
	case strings.Contains(aggregate, ":"):
		return fmt.Errorf("snapshot: aggregate name %q contains ':' (aggregate names are topic name prefixes, which cannot)", aggregate)
	case id == "":
		return fmt.Errorf("snapshot: %s: empty aggregate id", aggregate)
	}
	return nil
}

// check rejects a snapshot that cannot come from a runner, which would
// otherwise poison loads of its aggregate until overwritten.
func (s Snapshot) check() error {
	if err := checkKey(s.Aggregate, s.ID); err != nil {
		return err
	}
	switch {
	case s.Version < 1:
		return fmt.Errorf("snapshot: %s %s: version %d, want at least 1 (a snapshot covers at least one event)", s.Aggregate, s.ID, s.Version)
	case s.Partition < 0 || s.Offset < 0:
		return fmt.Errorf("snapshot: %s %s: negative partition %d or offset %d", s.Aggregate, s.ID, s.Partition, s.Offset)
	}
	return nil
}
