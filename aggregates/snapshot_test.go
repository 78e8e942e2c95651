package aggregates_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/internal/testenv"
)

// With snapshots on, a runner saves one every N events after its
// transaction committed, and a fresh runner loads from the snapshot plus
// the events after it. The test proves the snapshot is really used by
// doctoring it: the doctored item must appear in the reloaded state.
func TestRunnerSnapshots(t *testing.T) {
	stores := map[string]func(t *testing.T) snapshot.Store{
		"memory": func(*testing.T) snapshot.Store { return snapshot.NewMemory() },
		"redis": func(t *testing.T) snapshot.Store {
			s, err := snapshot.NewRedis(testenv.RedisClient(t, testenv.Redis(t).Addr))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			addr, serde := platform(t)
			store := newStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Run("first runner", func(t *testing.T) {
				iv := runTodoWith(t, addr, serde, aggregates.WithSnapshots(store, 5))
				if _, err := iv.Send(ctx, "todo", "l", CreateList{Name: "x"}); err != nil {
					t.Fatal(err)
				}
				for i := range 11 { // versions 2..12: snapshots at 5 and 10 (or later batches)
					if _, err := iv.Send(ctx, "todo", "l", AddItem{Title: strconv.Itoa(i)}, aggregates.WithCommandID("a"+strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
				}
			})
			snap, err := store.Load(ctx, "todo", "l")
			if err != nil || snap.Version < 10 || snap.Version > 12 {
				t.Fatalf("snapshot after 12 events every 5: version %d, %v", snap.Version, err)
			}
			var st struct {
				State  TodoList
				Seen   []string
				SeenAt []int64 `json:"seen_at"`
			}
			if err := json.Unmarshal(snap.State, &st); err != nil || len(st.State.Items) != int(snap.Version-1) || len(st.Seen) != int(snap.Version) {
				t.Fatalf("snapshot content: %s (%v)", snap.State, err)
			}
			st.State.Items["doctored"] = false
			snap.State, _ = json.Marshal(st)
			if err := store.Save(ctx, snap); err != nil {
				t.Fatal(err)
			}
			iv := runTodoWith(t, addr, serde, aggregates.WithSnapshots(store, 5))
			if _, err := iv.Send(ctx, "todo", "l", AddItem{Title: "doctored"}); err == nil {
				t.Fatal("the reloaded state does not come from the snapshot")
			}
			if _, err := iv.Send(ctx, "todo", "l", AddItem{Title: "10"}); err == nil {
				t.Fatal("events after the snapshot were not applied")
			}
			res, err := iv.Send(ctx, "todo", "l", AddItem{Title: "new"})
			if err != nil || res.Version != 13 {
				t.Fatalf("after reload: %+v %v, want version 13", res, err)
			}
			// A command id the snapshot remembers is answered with the
			// version it made (a2: the fourth event).
			if dup, err := iv.Send(ctx, "todo", "l", AddItem{Title: "2"}, aggregates.WithCommandID("a2")); err != nil || !dup.Duplicate || dup.Version != 4 {
				t.Fatalf("a command id from before the snapshot: %+v %v, want a duplicate at version 4", dup, err)
			}
		})
	}
}
