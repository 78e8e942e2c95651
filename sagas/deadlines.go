package sagas

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/recq/recq/sagas/store"
)

// refire is how long a fired deadline waits for its firing record to be
// handled before it is fired again (a record lost with a crashed member,
// a broker that refused it). A second firing is a no-op once the first
// was handled: the deadline is no longer pending.
const refire = 10 * time.Second

// timers keeps, for the partitions this member owns, a heap of pending
// deadlines, and fires each when due by calling fire (which produces a
// firing record). It fires nothing until armed: a (re)started member
// first catches up with its topics, so an event written before a deadline
// was due is handled before the deadline fires.
type timers struct {
	mu    sync.Mutex
	h     dueHeap
	at    map[timerKey]*timer
	armed bool
	wake  chan struct{}
	now   func() time.Time
}

type timerKey struct {
	instance, id string
}

type timer struct {
	store.Due
	partition int32
	when      time.Time // the next firing: the due time, then refire later
	i         int       // heap index
}

func newTimers(now func() time.Time) *timers {
	return &timers{at: map[timerKey]*timer{}, wake: make(chan struct{}, 1), now: now}
}

// replace sets partition's deadlines to dues (a claim read them from the
// store).
func (t *timers) replace(partition int32, dues []store.Due) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(partition)
	for _, d := range dues {
		t.addLocked(partition, d)
	}
	t.poke()
}

// drop forgets partition's deadlines (no longer this member's).
func (t *timers) drop(partition int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(partition)
}

func (t *timers) dropLocked(partition int32) {
	for k, x := range t.at {
		if x.partition == partition {
			heap.Remove(&t.h, x.i)
			delete(t.at, k)
		}
	}
}

func (t *timers) addLocked(partition int32, d store.Due) {
	k := timerKey{d.Instance, d.ID}
	if _, ok := t.at[k]; ok {
		return
	}
	x := &timer{Due: d, partition: partition, when: d.Due}
	t.at[k] = x
	heap.Push(&t.h, x)
}

// update applies an instance's committed change of deadlines.
func (t *timers) update(partition int32, instance string, before, after []store.Deadline) {
	if len(before) == 0 && len(after) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := map[string]bool{}
	for _, d := range after {
		keep[d.ID] = true
		t.addLocked(partition, store.Due{Instance: instance, Deadline: d})
	}
	for _, d := range before {
		if k := (timerKey{instance, d.ID}); !keep[d.ID] {
			if x, ok := t.at[k]; ok {
				heap.Remove(&t.h, x.i)
				delete(t.at, k)
			}
		}
	}
	t.poke()
}

// arm lets the timers fire.
func (t *timers) arm() {
	t.mu.Lock()
	t.armed = true
	t.mu.Unlock()
	t.poke()
}

// pending is how many deadlines are known.
func (t *timers) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}

func (t *timers) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run fires due deadlines until ctx ends. Before it fires those due by
// a time, settle waits until every event written before that time has
// been routed (its routed copy is acknowledged): the firing record then
// lands after them in the instance's partition, so a payment made before
// the deadline is handled before it, however far routing lags.
func (t *timers) run(ctx context.Context, settle func(context.Context), fire func(partition int32, d store.Due)) {
	for {
		t.mu.Lock()
		wait := time.Hour
		now := t.now()
		due := t.armed && t.h.Len() > 0 && !t.h[0].when.After(now)
		if t.armed && t.h.Len() > 0 && !due {
			wait = t.h[0].when.Sub(now)
		}
		t.mu.Unlock()
		if due {
			settle(ctx)
			t.fireDue(now, fire)
			continue
		}
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-t.wake:
		case <-tm.C:
		}
		tm.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// fireDue fires the deadlines due by now (the time settled for), and
// schedules each to fire again after refire, unless its handling drops it
// first.
func (t *timers) fireDue(now time.Time, fire func(partition int32, d store.Due)) {
	t.mu.Lock()
	var fires []timer
	for t.h.Len() > 0 && !t.h[0].when.After(now) {
		x := t.h[0]
		fires = append(fires, *x)
		x.when = t.now().Add(refire)
		heap.Fix(&t.h, 0)
	}
	t.mu.Unlock()
	for _, x := range fires {
		fire(x.partition, x.Due)
	}
}

// dueHeap orders timers by their next firing.
type dueHeap []*timer

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}
func (h *dueHeap) Push(x any) {
	t := x.(*timer)
	t.i = len(*h)
	*h = append(*h, t)
}
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
