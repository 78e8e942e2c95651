package aggregates

import "container/list"

// DefaultCacheSize is how many aggregates a runner keeps in memory.
const DefaultCacheSize = 10_000

// stateCache is the runner's LRU of loaded aggregates. Entries used by the
// batch in progress are pinned: evicting one would make a reload in the same
// batch miss the batch's own, not yet committed, events.
type stateCache[S any] struct {
	max   int
	batch uint64 // the batch in progress; entries with this mark are pinned
	ll    *list.List
	m     map[key]*list.Element
}

type cached[S any] struct {
	k     key
	e     *entry[S]
	batch uint64
}

func newStateCache[S any](max int) *stateCache[S] {
	if max < 1 {
		max = DefaultCacheSize
	}
	return &stateCache[S]{max: max, ll: list.New(), m: map[key]*list.Element{}}
}

// get returns k's entry, marking it used by the current batch.
func (c *stateCache[S]) get(k key) *entry[S] {
	el, ok := c.m[k]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(el)
	el.Value.(*cached[S]).batch = c.batch
	return el.Value.(*cached[S]).e
}

// put adds k's entry, used by the current batch, and evicts the least
// recently used entries that the batch does not use.
func (c *stateCache[S]) put(k key, e *entry[S]) {
	c.m[k] = c.ll.PushFront(&cached[S]{k: k, e: e, batch: c.batch})
	for el := c.ll.Back(); c.ll.Len() > c.max && el != nil; {
		prev := el.Prev()
		if v := el.Value.(*cached[S]); v.batch != c.batch {
			c.ll.Remove(el)
			delete(c.m, v.k)
		}
		el = prev
	}
}

func (c *stateCache[S]) remove(k key) {
	if el, ok := c.m[k]; ok {
		c.ll.Remove(el)
		delete(c.m, k)
	}
}

// dropPartitions forgets every aggregate of the given partitions.
func (c *stateCache[S]) dropPartitions(ps []int32) {
	lost := map[int32]bool{}
	for _, p := range ps {
		lost[p] = true
	}
	for k := range c.m {
		if lost[k.partition] {
			c.remove(k)
		}
	}
}

// clear forgets every aggregate.
func (c *stateCache[S]) clear() {
	c.ll.Init()
	clear(c.m)
}
