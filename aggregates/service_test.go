package aggregates_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

type (
	SendReminder struct{ To, Text string }
	ReminderSent struct{ To, Text string }
)

var errNoRecipient = errors.New("a reminder needs a recipient")

func reminders() *aggregates.Service {
	s := aggregates.NewService("reminders")
	aggregates.Serve(s, func(_ context.Context, c SendReminder) ([]any, error) {
		if c.To == "" {
			return nil, errNoRecipient
		}
		return []any{ReminderSent(c)}, nil
	})
	aggregates.Events(s, ReminderSent{})
	return s
}

// A service decides each command alone (no state, no version, no existence
// rule) and writes its events through the same transaction pipeline.
func TestServiceRunner(t *testing.T) {
	addr, serde := platform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := aggregates.EnsureTopics(ctx, streams.NewAdmin(testenv.Client(t, addr)), "reminders", 2); err != nil {
		t.Fatal(err)
	}
	r, err := aggregates.NewServiceRunner(reminders(), serde, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunUntilCleanup(t, r.Run)
	iv, err := aggregates.NewInvoker(ctx, []string{addr}, serde)
	if err != nil {
		t.Fatal(err)
	}
	defer iv.Close()

	for range 2 { // the same key twice: a service has no "already exists"
		res, err := iv.Send(ctx, "reminders", "ann", SendReminder{To: "ann", Text: "milk"})
		if err != nil || res.Events != 1 || res.Version != 0 {
			t.Fatalf("send: %+v %v", res, err)
		}
	}
	_, err = iv.Send(ctx, "reminders", "x", SendReminder{Text: "no one"})
	var rej *aggregates.RejectedError
	if !errors.As(err, &rej) || rej.Err.Error() != errNoRecipient.Error() {
		t.Fatalf("want the handler's rejection, got %v", err)
	}
	evts := testenv.ReadTopic(t, addr, aggregates.EventsTopic("reminders"))
	if len(evts) != 2 {
		t.Fatalf("%d service events, want 2", len(evts))
	}
	for _, e := range evts {
		env, _ := streams.ReadEnvelope(e)
		if env.Type != "aggregates_test.ReminderSent" || env.AggregateID != "" || env.AggregateVersion != 0 || env.CausationID == "" {
			t.Fatalf("service event envelope: %+v", env)
		}
	}
}
