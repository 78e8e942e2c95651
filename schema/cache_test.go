package schema

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A caller that joins a registry call already in flight is not cut short
// by that call's deadline: when the joined call fails, it asks again for
// itself.
func TestOnceMapJoinerAsksAgainWhenTheJoinedCallFails(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	m := onceMap[int, string]{load: func(context.Context, int) (string, error) {
		if calls.Add(1) == 1 {
			<-release
			return "", context.DeadlineExceeded // the first call's own deadline passed
		}
		return "schema", nil
	}}
	first := make(chan error, 1)
	go func() { _, err := m.get(context.Background(), 1); first <- err }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	type result struct {
		v   string
		err error
	}
	second := make(chan result, 1)
	go func() { v, err := m.get(context.Background(), 1); second <- result{v, err} }()
	time.Sleep(50 * time.Millisecond) // the second caller joins the first call
	close(release)
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller that started the failed call: %v, want its failure", err)
	}
	if r := <-second; r.err != nil || r.v != "schema" {
		t.Fatalf("the caller that joined it: %+v, want a call of its own that succeeds", r)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}
