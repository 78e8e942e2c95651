package state

import (
	"context"
	"sync"
)

// memory keeps positions and epochs in process memory.
type memory struct {
	mu    sync.Mutex
	parts map[memKey]*memPart
}

type memKey struct {
	group string
	p     Partition
}

type memPart struct {
	epoch int64
	next  int64
}

// NewMemory returns a Store in process memory. Every process starts with no
// positions, so a projector on it rebuilds its in-memory read model from the
// beginning on each start. Writes are OnCommit functions, run inside the
// atomic step under the store's lock.
func NewMemory() Store { return &memory{parts: map[memKey]*memPart{}} }

func (m *memory) Claim(_ context.Context, group string, p Partition) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{group, p}
	mp := m.parts[k]
	if mp == nil {
		mp = &memPart{next: NoPosition}
		m.parts[k] = mp
	}
	mp.epoch++
	return Lease{Group: group, Partition: p, Epoch: mp.epoch, Next: mp.next}, nil
}

func (m *memory) Positions(_ context.Context, group string) (map[Partition]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Partition]int64{}
	for k, mp := range m.parts {
		if k.group == group && mp.next != NoPosition {
			out[k.p] = mp.next
		}
	}
	return out, nil
}

func (m *memory) Begin(l Lease) Batch {
	// The step is one critical section of Go functions: it cannot fail
	// half-way, so nothing is ever held (Lease.Pending stays false).
	return &batch{lease: l, apply: func(_ context.Context, next int64, _ [][]any, fns []func()) (bool, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		mp := m.parts[memKey{l.Group, l.Partition}]
		if mp == nil || mp.epoch != l.Epoch {
			return false, ErrFenced
		}
		if next <= mp.next {
			return true, nil // applied already
		}
		for _, fn := range fns {
			fn()
		}
		mp.next = next
		return true, nil
	}}
}
