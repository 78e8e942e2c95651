package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

type memoryKey struct{ aggregate, id string }

type memory struct {
	mu sync.Mutex
	m  map[memoryKey]Snapshot
}

// NewMemory returns a Store that keeps snapshots in this process.
func NewMemory() Store { return &memory{m: map[memoryKey]Snapshot{}} }

func (s *memory) Load(ctx context.Context, aggregate, id string) (Snapshot, error) {
	if err := ready(ctx, aggregate, id); err != nil {
		return Snapshot{}, err
	}
	s.mu.Lock()
	snap, ok := s.m[memoryKey{aggregate, id}]
	s.mu.Unlock()
	if !ok {
		return Snapshot{}, fmt.Errorf("snapshot: %s %s: %w", aggregate, id, ErrNotFound)
	}
	// The caller may decode into or modify the slice; the stored copy must
	// not change with it.
	snap.State = bytes.Clone(snap.State)
	return snap, nil
}

func (s *memory) Save(ctx context.Context, snap Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := snap.check(); err != nil {
		return err
	}
	// Copied outside the lock: the caller may reuse its buffer after Save.
	snap.State = bytes.Clone(snap.State)
	k := memoryKey{snap.Aggregate, snap.ID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; !ok || old.Version <= snap.Version {
		s.m[k] = snap
	}
	return nil
}

func (s *memory) Delete(ctx context.Context, aggregate, id string) error {
	if err := ready(ctx, aggregate, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.m, memoryKey{aggregate, id})
	s.mu.Unlock()
	return nil
}

// ready is the memory store's check before an operation: it has no I/O that
// would notice a cancelled context by itself.
func ready(ctx context.Context, aggregate, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkKey(aggregate, id)
}
