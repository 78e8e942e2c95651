package schema

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// readMap is a map for caches written a few times and read on every call:
// readers look up an immutable snapshot with no lock and no allocation (a
// sync.Map would box every key); writers copy it. Entries are never removed.
type readMap[K comparable, V any] struct {
	mu   sync.Mutex
	snap atomic.Pointer[map[K]V]
}

func (m *readMap[K, V]) load(k K) (V, bool) {
	if p := m.snap.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// storeOnce stores v unless k has a value already, and returns the value kept,
// so that racing builders of the same entry all use one.
func (m *readMap[K, V]) storeOnce(k K, v V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	var old map[K]V
	if p := m.snap.Load(); p != nil {
		old = *p
	}
	if cur, ok := old[k]; ok {
		return cur
	}
	next := make(map[K]V, len(old)+1)
	for ek, ev := range old {
		next[ek] = ev
	}
	next[k] = v
	m.snap.Store(&next)
	return v
}

// fetchTimeout bounds a shared registry call. The call runs detached from the
// context of the caller that started it (other callers wait on it too), so it
// needs a deadline of its own.
const fetchTimeout = 30 * time.Second

// onceMap loads each key's value at most once at a time and keeps successes
// forever: schema ids and registrations never change meaning. Concurrent
// callers for the same key share one load (100 goroutines decoding a new id
// make one registry request). Failures are not kept, so a later call retries.
// Each caller waits under its own context.
type onceMap[K comparable, V any] struct {
	load func(context.Context, K) (V, error)
	done readMap[K, V]

	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	ready chan struct{}
	v     V
	err   error
}

func (m *onceMap[K, V]) get(ctx context.Context, k K) (V, error) {
	// A caller that joined a call already in flight gets that call's
	// failure only if it still fails when asked for itself: the call's
	// deadline was set when an earlier caller started it, and must not
	// shorten this caller's.
	for tries := 0; ; tries++ {
		v, joined, err := m.once(ctx, k)
		if err == nil || !joined || ctx.Err() != nil || tries == 2 {
			return v, err
		}
	}
}

// once gets k's value through one call, started here or joined, and says
// whether it joined one another caller had started.
func (m *onceMap[K, V]) once(ctx context.Context, k K) (V, bool, error) {
	if v, ok := m.done.load(k); ok {
		return v, false, nil
	}
	m.mu.Lock()
	if v, ok := m.done.load(k); ok {
		m.mu.Unlock()
		return v, false, nil
	}
	c, joined := m.calls[k]
	if !joined {
		c = &call[V]{ready: make(chan struct{})}
		if m.calls == nil {
			m.calls = map[K]*call[V]{}
		}
		m.calls[k] = c
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		go func() {
			defer cancel()
			c.v, c.err = m.load(lctx, k)
			m.mu.Lock()
			if c.err == nil {
				m.done.storeOnce(k, c.v)
			}
			delete(m.calls, k)
			m.mu.Unlock()
			close(c.ready)
		}()
	}
	m.mu.Unlock()
	select {
	case <-c.ready:
		return c.v, joined, c.err
	case <-ctx.Done():
		var zero V
		return zero, joined, ctx.Err()
	}
}
