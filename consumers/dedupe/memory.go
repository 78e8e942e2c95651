package dedupe

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultTTL is how long an id is remembered unless WithTTL says otherwise.
const DefaultTTL = 24 * time.Hour

// MemoryConfig configures a memory store. The zero value is valid.
type MemoryConfig struct {
	TTL     time.Duration // 0: DefaultTTL
	MaxSize int           // ids kept across scopes, oldest dropped first; 0: 1,000,000
}

// Validate reports a configuration that cannot work.
func (c MemoryConfig) Validate() error {
	if c.TTL < 0 || c.MaxSize < 0 {
		return fmt.Errorf("dedupe: memory TTL %v, size %d: want 0 (default) or more", c.TTL, c.MaxSize)
	}
	return nil
}

// MemoryOption configures a memory store.
type MemoryOption func(*MemoryConfig)

// WithMemoryTTL sets how long ids are remembered.
func WithMemoryTTL(d time.Duration) MemoryOption { return func(c *MemoryConfig) { c.TTL = d } }

// WithMaxSize bounds how many ids are kept; beyond it the oldest are
// forgotten first, so memory stays bounded on an endless stream.
func WithMaxSize(n int) MemoryOption { return func(c *MemoryConfig) { c.MaxSize = n } }

type memKey struct{ scope, id string }

type memEntry struct {
	key     memKey
	expires time.Time
}

type memory struct {
	cfg   MemoryConfig
	mu    sync.Mutex
	ids   map[memKey]*list.Element
	order *list.List // oldest mark first
}

// NewMemory returns a Store in process memory. Expired ids are dropped as
// new ones arrive (no goroutine to stop).
func NewMemory(opts ...MemoryOption) (Store, error) {
	var cfg MemoryConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1_000_000
	}
	return &memory{cfg: cfg, ids: map[memKey]*list.Element{}, order: list.New()}, nil
}

func (m *memory) Seen(_ context.Context, scope string, ids ...string) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]bool, len(ids))
	for i, id := range ids {
		if e, ok := m.ids[memKey{scope, id}]; ok {
			out[i] = now.Before(e.Value.(*memEntry).expires)
		}
	}
	return out, nil
}

func (m *memory) Mark(_ context.Context, scope string, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		k := memKey{scope, id}
		if e, ok := m.ids[k]; ok {
			m.order.Remove(e)
		}
		m.ids[k] = m.order.PushBack(&memEntry{key: k, expires: now.Add(m.cfg.TTL)})
	}
	// Marks are in time order and share one TTL, so the front is the
	// first to expire.
	for m.order.Len() > 0 {
		front := m.order.Front()
		e := front.Value.(*memEntry)
		if m.order.Len() <= m.cfg.MaxSize && now.Before(e.expires) {
			break
		}
		m.order.Remove(front)
		delete(m.ids, e.key)
	}
	return nil
}
