package aggregates

import "testing"

func TestStateCacheEvictsLeastRecentlyUsedButNotPinned(t *testing.T) {
	c := newStateCache[int](2)
	k := func(p int32, id string) key { return key{p, id} }
	c.batch = 1
	c.put(k(0, "a"), &entry[int]{})
	c.put(k(0, "b"), &entry[int]{})
	c.batch = 2
	c.get(k(0, "a")) // a used again: b is now the least recent
	c.put(k(1, "c"), &entry[int]{})
	if c.get(k(0, "b")) != nil || c.get(k(0, "a")) == nil || c.get(k(1, "c")) == nil {
		t.Fatal("want b evicted, a and c kept")
	}
	// Everything is pinned by batch 2 now: the cache grows rather than
	// dropping an aggregate the batch uses.
	c.put(k(1, "d"), &entry[int]{})
	if c.ll.Len() != 3 {
		t.Fatalf("pinned entries were evicted: %d left", c.ll.Len())
	}
	c.batch = 3
	c.put(k(1, "e"), &entry[int]{})
	if c.ll.Len() != 2 || c.get(k(1, "e")) == nil {
		t.Fatalf("a new batch must shrink the cache back to its bound: %d", c.ll.Len())
	}
	c.dropPartitions([]int32{1})
	for id := range map[string]bool{"c": true, "d": true, "e": true} {
		if c.get(k(1, id)) != nil {
			t.Fatalf("%s of a dropped partition still cached", id)
		}
	}
	c.remove(k(9, "never")) // removing what is not there is fine
}
