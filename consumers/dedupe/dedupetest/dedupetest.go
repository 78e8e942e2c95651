// Package dedupetest is the conformance suite for implementations of
// [dedupe.Store].
package dedupetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recq/recq/consumers/dedupe"
)

// NewStore returns an empty store remembering ids for ttl.
type NewStore func(t *testing.T, ttl time.Duration) dedupe.Store

// Run runs the suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("MarkThenSeen", func(t *testing.T) {
		s := newStore(t, time.Hour)
		got := seen(t, s, "g", "a", "b", "c")
		if fmt.Sprint(got) != "[false false false]" {
			t.Fatalf("fresh store: %v", got)
		}
		must(t, s.Mark(ctx, "g", "b", "c"))
		// Results follow the ids' order, duplicates included.
		if got := seen(t, s, "g", "c", "a", "b", "c"); fmt.Sprint(got) != "[true false true true]" {
			t.Fatalf("after marking b and c: %v", got)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		s := newStore(t, time.Hour)
		must(t, s.Mark(ctx, "g"))
		if got := seen(t, s, "g"); len(got) != 0 {
			t.Fatalf("no ids: %v", got)
		}
	})
	t.Run("ScopesIsolated", func(t *testing.T) {
		s := newStore(t, time.Hour)
		must(t, s.Mark(ctx, "g1", "x"))
		if got := seen(t, s, "g2", "x"); got[0] {
			t.Fatal("an id marked in g1 is seen in g2")
		}
	})
	t.Run("Expires", func(t *testing.T) {
		s := newStore(t, 50*time.Millisecond)
		must(t, s.Mark(ctx, "g", "x"))
		if !seen(t, s, "g", "x")[0] {
			t.Fatal("not seen right after marking")
		}
		deadline := time.Now().Add(10 * time.Second)
		for seen(t, s, "g", "x")[0] {
			if time.Now().After(deadline) {
				t.Fatal("still seen 10s after a 50ms TTL")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, time.Hour)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 50 {
					id := fmt.Sprintf("%d-%d", w, i)
					if err := s.Mark(ctx, "g", id); err != nil {
						t.Error(err)
						return
					}
					if got, err := s.Seen(ctx, "g", id); err != nil || !got[0] {
						t.Errorf("%s: seen %v %v", id, got, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func seen(t *testing.T, s dedupe.Store, scope string, ids ...string) []bool {
	t.Helper()
	got, err := s.Seen(context.Background(), scope, ids...)
	must(t, err)
	if len(got) != len(ids) {
		t.Fatalf("Seen of %d ids returned %d results", len(ids), len(got))
	}
	return got
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
