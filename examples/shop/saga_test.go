package shop_test

import (
	"testing"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/examples/shop"
	"github.com/recq/recq/sagas/sagastest"
)

const id = "order=O-1"

func sagaFixture(t *testing.T) *sagastest.TestFixture[shop.Fulfilment] {
	return sagastest.Fixture(t, shop.Saga(shop.SagaConfig{PaymentTimeout: time.Minute}))
}

var (
	placed = shop.OrderPlaced{OrderID: "O-1", Amount: 1200}
	paid   = shop.PaymentReceived{OrderID: "O-1", Amount: 1200}
)

func sent(aggregate string, cmd any) sagastest.Sent {
	return sagastest.Sent{Aggregate: aggregate, ID: "O-1", Command: cmd}
}

// rejecting answers commands of type C with err, the others as accepted.
func rejecting[C any](err error) func(sagastest.Sent) (aggregates.Result, error) {
	return func(s sagastest.Sent) (aggregates.Result, error) {
		if _, ok := s.Command.(C); ok {
			return aggregates.Result{}, &aggregates.RejectedError{Err: err}
		}
		return aggregates.Result{Version: 2, Events: 1}, nil
	}
}

func TestFulfilmentPlacedRequestsThePayment(t *testing.T) {
	sagaFixture(t).When(placed).
		ExpectSent(sent(shop.PaymentsName, shop.RequestPayment{OrderID: "O-1", Amount: 1200})).
		ExpectDeadline(id, shop.PaymentDue, time.Minute).
		ExpectRunning(id)
}

func TestFulfilmentPaidInTimeShips(t *testing.T) {
	f := sagaFixture(t).Given(placed)
	f.At(f.Now().Add(59 * time.Second)).When(paid).
		ExpectSent(sent(shop.OrdersName, shop.ShipOrder{})).
		ExpectEnded(id)
	f.WhenTimePasses(time.Hour).ExpectNothingSent()
}

func TestFulfilmentShipRefusedRefunds(t *testing.T) {
	f := sagaFixture(t).Given(placed)
	f.Answer(rejecting[shop.ShipOrder](shop.ErrOrderCancelled)).When(paid).
		ExpectSent(sent(shop.OrdersName, shop.ShipOrder{}),
			sent(shop.PaymentsName, shop.Refund{Reason: "the order was cancelled"})).
		ExpectEnded(id)
}

func TestFulfilmentNotPaidCancels(t *testing.T) {
	sagaFixture(t).Given(placed).WhenTimePasses(time.Minute).
		ExpectSent(sent(shop.OrdersName, shop.CancelOrder{Reason: "not paid in time"}),
			sent(shop.PaymentsName, shop.CancelPayment{Reason: "not paid in time"})).
		ExpectEnded(id)
}

// Paid just before the cancellation reached the payment: refunded.
func TestFulfilmentPaidDuringCancellationRefunds(t *testing.T) {
	sagaFixture(t).Given(placed).Answer(rejecting[shop.CancelPayment](shop.ErrPaid)).WhenTimePasses(time.Minute).
		ExpectSent(sent(shop.OrdersName, shop.CancelOrder{Reason: "not paid in time"}),
			sent(shop.PaymentsName, shop.CancelPayment{Reason: "not paid in time"}),
			sent(shop.PaymentsName, shop.Refund{Reason: "paid after the order was cancelled"})).
		ExpectEnded(id)
}

// A payment written after the due time finds the deadline fired first,
// however late the saga handles it; the payment was taken, so it is
// refunded.
func TestFulfilmentLatePaymentIsRefunded(t *testing.T) {
	f := sagaFixture(t).Given(placed).Answer(rejecting[shop.CancelPayment](shop.ErrPaid))
	f.At(f.Now().Add(61*time.Second)).When(paid).
		ExpectSent(sent(shop.OrdersName, shop.CancelOrder{Reason: "not paid in time"}),
			sent(shop.PaymentsName, shop.CancelPayment{Reason: "not paid in time"}),
			sent(shop.PaymentsName, shop.Refund{Reason: "paid after the order was cancelled"})).
		ExpectEnded(id)
}

// A failed send is the handler's error: the runner retries the event.
func TestFulfilmentUnansweredSendIsRetried(t *testing.T) {
	sagaFixture(t).Given(placed).
		Answer(func(sagastest.Sent) (aggregates.Result, error) { return aggregates.Result{}, errorString("no reply") }).
		When(paid).ExpectError("no reply")
}

func TestFulfilmentPaymentOfUnknownOrderIsSkipped(t *testing.T) {
	sagaFixture(t).When(shop.PaymentReceived{OrderID: "O-9", Amount: 1}).ExpectSkipped().ExpectNoInstance("order=O-9")
}
