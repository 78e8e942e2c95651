package sagastest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/sagas"
	"github.com/recq/recq/sagas/sagastest"
)

type (
	OrderPlaced struct {
		Order  string
		Amount int64
	}
	PaymentAuthorized struct{ Order, Payment string }
	PaymentCaptured   struct{ Payment string }

	RequestPayment struct {
		Order  string
		Amount int64
	}
	ShipOrder   struct{}
	CancelOrder struct{ Reason string }
	Refund      struct{ Amount int64 }
)

type fulfilment struct {
	Amount  int64
	Payment string
}

func saga() *sagas.Saga[fulfilment] {
	s := sagas.New[fulfilment]("shop", "fulfilment", 1, "orders.events", "payments.events")
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.Order }), func(ctx context.Context, e OrderPlaced, in *sagas.Instance[fulfilment]) error {
		in.State.Amount = e.Amount
		in.Schedule("payment-due", 15*time.Minute)
		_, err := in.Send(ctx, "payments", e.Order, RequestPayment{Order: e.Order, Amount: e.Amount})
		return err
	})
	sagas.On(s, sagas.By("order", func(e PaymentAuthorized) string { return e.Order }), func(ctx context.Context, e PaymentAuthorized, in *sagas.Instance[fulfilment]) error {
		in.State.Payment = e.Payment
		in.Cancel("payment-due")
		in.Associate("payment", e.Payment)
		return nil
	})
	sagas.On(s, sagas.By("payment", func(e PaymentCaptured) string { return e.Payment }), func(ctx context.Context, e PaymentCaptured, in *sagas.Instance[fulfilment]) error {
		order := in.ID()[len("order="):]
		_, err := in.Send(ctx, "orders", order, ShipOrder{})
		var rej *aggregates.RejectedError
		if errors.As(err, &rej) {
			// Compensate: the order cannot ship, give the money back.
			if _, err := in.Send(ctx, "payments", order, Refund{Amount: in.State.Amount}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		in.End()
		return nil
	})
	sagas.OnDeadline(s, "payment-due", func(ctx context.Context, in *sagas.Instance[fulfilment]) error {
		if _, err := in.Send(ctx, "orders", in.ID()[len("order="):], CancelOrder{Reason: "not paid in time"}); err != nil {
			return err
		}
		in.End()
		return nil
	})
	return s
}

const o1 = "order=o1"

func TestStartSendsAndSchedules(t *testing.T) {
	sagastest.Fixture(t, saga()).
		When(OrderPlaced{Order: "o1", Amount: 30}).
		ExpectSent(sagastest.Sent{Aggregate: "payments", ID: "o1", Command: RequestPayment{Order: "o1", Amount: 30}}).
		ExpectDeadline(o1, "payment-due", 15*time.Minute).
		ExpectAssociations(o1, o1).
		ExpectRunning(o1)
}

func TestAssociationLookupAndAddedAssociation(t *testing.T) {
	f := sagastest.Fixture(t, saga()).Given(OrderPlaced{Order: "o1", Amount: 30})
	f.When(PaymentAuthorized{Order: "o1", Payment: "pay-9"}).
		ExpectNothingSent().
		ExpectNoDeadline(o1, "payment-due").
		ExpectAssociations(o1, o1, "payment=pay-9")
	if got := f.State(o1); got.Payment != "pay-9" || got.Amount != 30 {
		t.Fatalf("state %+v", got)
	}
	// Found by the association it added, not by its id.
	f.When(PaymentCaptured{Payment: "pay-9"}).
		ExpectSent(sagastest.Sent{Aggregate: "orders", ID: "o1", Command: ShipOrder{}}).
		ExpectEnded(o1)
	// Ended: a late copy starts nothing and sends nothing.
	f.When(PaymentCaptured{Payment: "pay-9"}).ExpectSkipped().ExpectNothingSent()
	f.When(OrderPlaced{Order: "o1", Amount: 30}).ExpectSkipped().ExpectNothingSent()
}

func TestEventWithoutInstanceIsSkipped(t *testing.T) {
	sagastest.Fixture(t, saga()).
		When(PaymentAuthorized{Order: "o7", Payment: "pay-1"}).
		ExpectSkipped().
		ExpectNothingSent().
		ExpectNoInstance("order=o7")
}

func TestCompensationOnRejectedCommand(t *testing.T) {
	f := sagastest.Fixture(t, saga()).Given(OrderPlaced{Order: "o1", Amount: 30}, PaymentAuthorized{Order: "o1", Payment: "pay-9"})
	f.Answer(func(c sagastest.Sent) (aggregates.Result, error) {
		if _, ok := c.Command.(ShipOrder); ok {
			return aggregates.Result{}, &aggregates.RejectedError{Err: errors.New("out of stock")}
		}
		return aggregates.Result{Version: 2, Events: 1}, nil
	})
	f.When(PaymentCaptured{Payment: "pay-9"}).
		ExpectSent(
			sagastest.Sent{Aggregate: "orders", ID: "o1", Command: ShipOrder{}},
			sagastest.Sent{Aggregate: "payments", ID: "o1", Command: Refund{Amount: 30}}).
		ExpectEnded(o1)
}

func TestDeadlineFiredVersusCancelled(t *testing.T) {
	fired := sagastest.Fixture(t, saga()).Given(OrderPlaced{Order: "o1", Amount: 30})
	fired.WhenTimePasses(14 * time.Minute).ExpectNothingSent().ExpectRunning(o1)
	fired.WhenTimePasses(time.Minute).
		ExpectSent(sagastest.Sent{Aggregate: "orders", ID: "o1", Command: CancelOrder{Reason: "not paid in time"}}).
		ExpectEnded(o1)
	fired.WhenTimePasses(time.Hour).ExpectNothingSent()

	cancelled := sagastest.Fixture(t, saga()).Given(OrderPlaced{Order: "o1", Amount: 30})
	cancelled.WhenTimePasses(10 * time.Minute)
	cancelled.When(PaymentAuthorized{Order: "o1", Payment: "pay-9"}).ExpectNoDeadline(o1, "payment-due")
	cancelled.WhenTimePasses(time.Hour).ExpectNothingSent().ExpectRunning(o1)
}

// An event later than a pending deadline finds it fired first, however
// late it is handled: the outcome follows the events' times.
func TestLateEventFindsDeadlineFired(t *testing.T) {
	f := sagastest.Fixture(t, saga()).Given(OrderPlaced{Order: "o1", Amount: 30})
	f.WhenTimePasses(0) // nothing due yet
	f.At(f.Now().Add(20 * time.Minute)).When(PaymentAuthorized{Order: "o1", Payment: "pay-9"}).
		ExpectSent(sagastest.Sent{Aggregate: "orders", ID: "o1", Command: CancelOrder{Reason: "not paid in time"}}).
		ExpectEnded(o1)
}

func TestBadAssociationIsAnError(t *testing.T) {
	sagastest.Fixture(t, saga()).
		When(PaymentAuthorized{Order: "", Payment: "pay-1"}).
		ExpectError(`association "order"`).
		ExpectError("empty")
}
