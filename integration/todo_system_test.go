package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recq/recq/examples/todo"
	"github.com/recq/recq/internal/testenv"
)

// todoPlan is what one list's requests should leave behind.
type todoPlan struct {
	id       string
	title    string
	owner    string
	archived bool
	items    []todo.ItemView
	version  int64 // events the accepted commands imply
}

// driveList sends one list's requests in order, each with its own
// idempotency key, riding out a restart: create, add four items, check two,
// uncheck one, remove one, rename, and delete one list in ten.
func (e *todoEnv) driveList(ctx context.Context, i int, answered, retried *atomic.Int64) todoPlan {
	k := func(what string, a ...any) string { return keyf("l%d-", i) + fmt.Sprintf(what, a...) }
	send := func(want int, method, path, key string, body any) []byte {
		out, attempts := e.must(ctx, want, method, path, key, body)
		answered.Add(1)
		if attempts > 1 {
			retried.Add(1)
		}
		return out
	}
	p := todoPlan{title: fmt.Sprintf("list %d renamed", i), owner: fmt.Sprintf("owner-%d", i%7)}
	p.id = created(e.t, send(http.StatusCreated, "POST", "/lists", k("create"), map[string]string{"title": fmt.Sprint("list ", i), "owner": p.owner}))
	var items []string
	for j := range 4 {
		text := fmt.Sprintf("item %d of list %d", j, i)
		items = append(items, created(e.t, send(http.StatusCreated, "POST", "/lists/"+p.id+"/items", k("item-%d", j), map[string]string{"text": text})))
		p.items = append(p.items, todo.ItemView{ID: items[j], Text: text})
	}
	send(http.StatusNoContent, "POST", "/lists/"+p.id+"/items/"+items[0]+"/check", k("check-0"), nil)
	send(http.StatusNoContent, "POST", "/lists/"+p.id+"/items/"+items[2]+"/check", k("check-2"), nil)
	send(http.StatusNoContent, "POST", "/lists/"+p.id+"/items/"+items[2]+"/uncheck", k("uncheck-2"), nil)
	send(http.StatusNoContent, "DELETE", "/lists/"+p.id+"/items/"+items[3], k("remove-3"), nil)
	send(http.StatusNoContent, "PATCH", "/lists/"+p.id, k("rename"), map[string]string{"title": p.title})
	p.items[0].Done, p.items = true, p.items[:3]
	p.version = 10
	if i%10 == 0 {
		send(http.StatusNoContent, "DELETE", "/lists/"+p.id, k("delete"), nil)
		p.archived, p.version = true, 11
	}
	return p
}

const todoRequestsPerList = 10

// 500 lists are driven concurrently over HTTP through the TodoList service
// (Redis read model, positions, dedupe and snapshots), which is killed with
// SIGKILL halfway and restarted; clients send what was not answered again
// with the same idempotency key. Every list, read through the API, is then
// exactly what the accepted commands imply: the version counts every event,
// so a command applied twice or lost shows. A request retried across the
// kill with the same key counts once.
func TestTodoSystemKill9(t *testing.T) {
	const lists, workers = 500, 32
	e := newTodoEnv(t, testenv.RedisPersistent(t))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// One request answered before the kill, sent again after it.
	first := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists", "across-create", map[string]string{"title": "across", "owner": "x"})))
	acrossBefore := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists/"+first+"/items", "across-item", map[string]string{"text": "once"})))

	plans := make([]todoPlan, lists)
	var answered, retried atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				plans[i] = e.driveList(ctx, i, &answered, &retried)
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range lists {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	testenv.WaitFor(t, "half the requests answered", 2*time.Minute, func() bool { return answered.Load() >= lists*todoRequestsPerList/2 })
	e.proc().Kill9()
	killed, at := time.Now(), answered.Load()
	e.start()
	t.Logf("killed after %d requests answered; the service was back %v later", at, time.Since(killed).Round(time.Millisecond))
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if retried.Load() == 0 {
		t.Fatal("no request was sent again across the kill: the test did not reach the restart path")
	}
	if again := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists", "across-create", map[string]string{"title": "across", "owner": "x"}))); again != first {
		t.Fatalf("the same idempotency key after the restart created list %s, before %s", again, first)
	}
	acrossAfter := created(t, mustBody(e.must(ctx, http.StatusCreated, "POST", "/lists/"+first+"/items", "across-item", map[string]string{"text": "once"})))
	if acrossAfter != acrossBefore {
		t.Fatalf("the same idempotency key after the restart made item %s, before %s", acrossAfter, acrossBefore)
	}
	if v := e.list(ctx, first); len(v.Items) != 1 || v.Version != 2 {
		t.Fatalf("list with one item sent twice under one key: %+v, want one item at version 2", v)
	}

	// A creation applied twice would leave a list nobody holds.
	out, _ := e.must(ctx, http.StatusOK, "GET", "/lists", "", nil)
	var all []todo.ListView
	if err := json.Unmarshal(out, &all); err != nil || len(all) != lists+1 {
		t.Fatalf("GET /lists: %d lists (%v), want %d: a retried creation made a second list", len(all), err, lists+1)
	}
	owners := map[string]int{}
	for i, p := range plans {
		v := e.list(ctx, p.id)
		want := todo.ListView{ID: p.id, Title: p.title, Owner: p.owner, Archived: p.archived, Items: p.items, Version: p.version}
		if v.ID != want.ID || v.Title != want.Title || v.Owner != want.Owner || v.Archived != want.Archived || v.Version != want.Version || !slices.Equal(v.Items, want.Items) {
			t.Fatalf("list %d:\n got %+v\nwant %+v", i, v, want)
		}
		owners[p.owner]++
	}
	for owner, n := range owners {
		out, _ := e.must(ctx, http.StatusOK, "GET", "/lists?owner="+owner, "", nil)
		var vs []todo.ListView
		if err := json.Unmarshal(out, &vs); err != nil || len(vs) != n {
			t.Fatalf("GET /lists?owner=%s: %d lists (%v), want %d", owner, len(vs), err, n)
		}
	}
	t.Logf("%d lists, %d requests answered, %d sent more than once", lists, answered.Load(), retried.Load())
}

func mustBody(b []byte, _ int) []byte { return b }
