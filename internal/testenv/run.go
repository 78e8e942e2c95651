package testenv

import (
	"context"
	"testing"
)

// RunUntilCleanup runs run in the background until the test's cleanup,
// which cancels its context, waits for it and reports its error.
func RunUntilCleanup(t testing.TB, run func(context.Context) error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("background run: %v", err)
		}
	})
}
