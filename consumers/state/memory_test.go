package state_test

import (
	"context"
	"sync"
	"testing"

	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/consumers/state/statetest"
)

// counters is the memory harness's read model, one per store.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func TestMemory(t *testing.T) {
	var mu sync.Mutex
	models := map[state.Store]*counters{}
	model := func(s state.Store) *counters {
		mu.Lock()
		defer mu.Unlock()
		return models[s]
	}
	statetest.Run(t, statetest.Harness{
		New: func(*testing.T) state.Store {
			s := state.NewMemory()
			mu.Lock()
			models[s] = &counters{m: map[string]int64{}}
			mu.Unlock()
			return s
		},
		Add: func(ctx context.Context, s state.Store, key string, delta int64) {
			c := model(s)
			state.OnCommit(ctx, func() {
				c.mu.Lock()
				c.m[key] += delta
				c.mu.Unlock()
			})
		},
		Read: func(_ *testing.T, s state.Store, key string) int64 {
			c := model(s)
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.m[key]
		},
	})
}

func TestMemoryRefusesRedisHandle(t *testing.T) {
	s := state.NewMemory()
	l, _ := s.Claim(context.Background(), "g", state.Partition{Topic: "t", Partition: 0})
	err := s.Begin(l).Do(context.Background(), func(ctx context.Context) (err error) {
		defer func() {
			if v := recover(); v == nil {
				t.Error("state.Redis on a memory store did not panic")
			}
		}()
		state.Redis(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
