package shop_test

import (
	"testing"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/aggregatestest"
	"github.com/recq/recq/examples/shop"
)

func TestOrderRules(t *testing.T) {
	fx := func() *aggregatestest.TestFixture[shop.Order] { return aggregatestest.Fixture(t, shop.Orders()) }
	placed := shop.OrderPlaced{OrderID: "O-1", Amount: 1200}
	shipped := shop.OrderShipped{OrderID: "O-1"}
	cancelled := shop.OrderCancelled{OrderID: "O-1", Reason: "late"}

	fx().When(shop.PlaceOrder{OrderID: "O-1", Amount: 1200}).Then(placed)
	fx().When(shop.PlaceOrder{OrderID: " ", Amount: 1200}).ThenRejected(shop.ErrNoOrderID)
	fx().When(shop.PlaceOrder{OrderID: "O-1"}).ThenRejected(shop.ErrNoAmount)
	fx().When(shop.PlaceOrder{OrderID: "O-1", Amount: -5}).ThenRejected(shop.ErrNoAmount)
	fx().Given(placed).When(shop.PlaceOrder{OrderID: "O-1", Amount: 1}).ThenRejected(shop.ErrAlreadyPlaced)

	// Shipped or cancelled, never both; twice changes nothing.
	fx().When(shop.ShipOrder{}).ThenRejected(aggregates.ErrNotFound)
	fx().Given(placed).When(shop.ShipOrder{}).Then(shipped)
	fx().Given(placed, shipped).When(shop.ShipOrder{}).Then()
	fx().Given(placed, cancelled).When(shop.ShipOrder{}).ThenRejected(shop.ErrOrderCancelled)
	fx().When(shop.CancelOrder{Reason: "late"}).ThenRejected(aggregates.ErrNotFound)
	fx().Given(placed).When(shop.CancelOrder{Reason: "late"}).Then(cancelled)
	fx().Given(placed, cancelled).When(shop.CancelOrder{Reason: "again"}).Then()
	fx().Given(placed, shipped).When(shop.CancelOrder{Reason: "late"}).ThenRejected(shop.ErrOrderShipped)

	s := fx().Given(placed, shipped).When(shop.ShipOrder{}).Then()
	if *s != (shop.Order{ID: "O-1", Amount: 1200, Shipped: true}) {
		t.Fatalf("state %+v", *s)
	}
}

func TestPaymentRules(t *testing.T) {
	fx := func() *aggregatestest.TestFixture[shop.Payment] { return aggregatestest.Fixture(t, shop.Payments()) }
	requested := shop.PaymentRequested{OrderID: "O-1", Amount: 1200}
	received := shop.PaymentReceived{OrderID: "O-1", Amount: 1200}
	cancelled := shop.PaymentCancelled{OrderID: "O-1", Reason: "late"}
	refunded := shop.PaymentRefunded{OrderID: "O-1", Amount: 1200, Reason: "cancelled"}

	fx().When(shop.RequestPayment{OrderID: "O-1", Amount: 1200}).Then(requested)
	fx().When(shop.RequestPayment{Amount: 1200}).ThenRejected(shop.ErrNoOrderID)
	fx().When(shop.RequestPayment{OrderID: "O-1"}).ThenRejected(shop.ErrNoAmount)
	fx().Given(requested).When(shop.RequestPayment{OrderID: "O-1", Amount: 1}).ThenRejected(shop.ErrPaymentExists)

	// Paid once, and only while not cancelled.
	fx().When(shop.Pay{}).ThenRejected(aggregates.ErrNotFound)
	fx().Given(requested).When(shop.Pay{}).Then(received)
	fx().Given(requested, received).When(shop.Pay{}).ThenRejected(shop.ErrAlreadyPaid)
	fx().Given(requested, cancelled).When(shop.Pay{}).ThenRejected(shop.ErrPaymentCancelled)

	// Cancelled only while unpaid: a paid one is refunded instead.
	fx().Given(requested).When(shop.CancelPayment{Reason: "late"}).Then(cancelled)
	fx().Given(requested, cancelled).When(shop.CancelPayment{Reason: "late"}).Then()
	fx().Given(requested, received).When(shop.CancelPayment{Reason: "late"}).ThenRejected(shop.ErrPaid)
	fx().Given(requested, received, refunded).When(shop.CancelPayment{Reason: "late"}).ThenRejected(shop.ErrPaid)

	// Refunded once, and only when paid.
	fx().Given(requested).When(shop.Refund{Reason: "cancelled"}).ThenRejected(shop.ErrNotPaid)
	fx().Given(requested, cancelled).When(shop.Refund{Reason: "cancelled"}).ThenRejected(shop.ErrNotPaid)
	fx().Given(requested, received).When(shop.Refund{Reason: "cancelled"}).Then(refunded)
	fx().Given(requested, received, refunded).When(shop.Refund{Reason: "again"}).Then()
}

// Rejected tells a rejection from its message, as an invoker answers it.
func TestRejected(t *testing.T) {
	wire := &aggregates.RejectedError{Err: errorString(shop.ErrPaid.Error())}
	switch {
	case !shop.Rejected(wire, shop.ErrPaid):
		t.Fatal("an invoker's rejection with ErrPaid's message is not ErrPaid")
	case shop.Rejected(wire, shop.ErrNotPaid):
		t.Fatal("ErrPaid's message taken for ErrNotPaid")
	case !shop.Rejected(&aggregates.RejectedError{Command: "shop.CancelPayment", Err: shop.ErrPaid}, shop.ErrPaid):
		t.Fatal("a local rejection is not recognised")
	case shop.Rejected(nil, shop.ErrPaid), shop.Rejected(aggregates.ErrNotFound, shop.ErrPaid):
		t.Fatal("a non-rejection taken for one")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
