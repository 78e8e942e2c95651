package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Record is one entry of the registry's log: a key and a value, both JSON
// documents in the format described in the package documentation. A nil
// Value is a tombstone: it permanently removes what the key stood for, and
// lets a compacted topic drop the key.
type Record struct {
	Key   []byte
	Value []byte
}

// ErrConflict is returned (wrapped) by [Store.Write] when the log is no longer
// at the position the writer expected: another writer appended first, or this
// writer was fenced. Nothing was appended; the caller reads the new records
// and decides again.
var ErrConflict = errors.New("registry store: log changed since it was read")

// Store is the registry's log of facts. The registry keeps all of its state
// (subjects, versions, ids, configs, modes) as a pure function of this log,
// so several registry instances sharing one log serve the same data.
//
// A position names a point in the log: the place where the next record
// would be appended. Positions are opaque, increase monotonically, need not
// be dense (a Kafka store uses offsets, which skip transaction markers), and
// are comparable across every handle on the same log. Position 0 is the
// start of the log.
//
// Implementations are safe for concurrent use. The registry never modifies
// the slices it passes to or gets from a Store.
type Store interface {
	// Read returns the records at or after position from, in log order, up
	// to the current end of the log, and that end position, to be passed to
	// the next Read or Write. Read must observe every Write that returned nil
	// before Read was called, through any handle on the log (this is what
	// gives read-your-writes across instances). Because the registry calls
	// Read before serving every request, a Read that finds nothing new should
	// be cheap (for Kafka: one end-offset lookup).
	Read(ctx context.Context, from int64) (records []Record, end int64, err error)

	// Write appends records atomically, all or none, if and only if the end
	// of the log is still at; otherwise it appends nothing and returns an
	// error wrapping ErrConflict. Exactly one of several concurrent Writes
	// at the same position may succeed, across all handles on the log: this
	// single-writer rule is what keeps two instances from handing out one
	// schema id twice. Once Write returns nil the records are durable and
	// visible to Read on every handle. Any other error means the outcome is
	// unknown; the registry reports it as a store error (50001) and re-reads
	// before its next decision.
	Write(ctx context.Context, at int64, records []Record) error
}

// NewMemoryStore returns a Store that keeps the log in memory. It is the
// reference implementation of the Store contract: a registry on it loses its
// data when the process exits, and several servers in one process may share
// it.
func NewMemoryStore() Store {
	return &memoryStore{}
}

type memoryStore struct {
	mu  sync.Mutex
	log []Record
}

func (m *memoryStore) Read(ctx context.Context, from int64) ([]Record, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	end := int64(len(m.log))
	if from < 0 || from > end {
		return nil, 0, fmt.Errorf("memory store: read from position %d outside the log [0, %d]", from, end)
	}
	// The records themselves are never modified after append, so sharing
	// their byte slices is safe; the slice header is cloned so appends do
	// not race with the caller's iteration.
	return slices.Clone(m.log[from:end]), end, nil
}

func (m *memoryStore) Write(ctx context.Context, at int64, records []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int64(len(m.log)); at != end {
		return fmt.Errorf("memory store: write at position %d, log ends at %d: %w", at, end, ErrConflict)
	}
	for _, r := range records {
		// slices.Clone keeps a nil Value nil, so tombstones stay tombstones.
		m.log = append(m.log, Record{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
	}
	return nil
}
