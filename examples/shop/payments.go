package shop

import (
	"context"

	"github.com/recq/recq/aggregates"
)

// Payment is the payment of one order (the aggregate id is the order's).
type Payment struct {
	OrderID   string
	Amount    int64
	Paid      bool
	Cancelled bool
	Refunded  bool
}

// Payments defines the payments aggregate: a payment is requested, then
// paid or cancelled, never both; only a paid one is refunded, once.
func Payments() *aggregates.Aggregate[Payment] {
	a := aggregates.New[Payment](PaymentsName)
	aggregates.Create(a, func(_ context.Context, c RequestPayment, s *Payment) ([]any, error) {
		switch {
		case s.OrderID != "":
			return nil, ErrPaymentExists
		case c.OrderID == "":
			return nil, ErrNoOrderID
		case c.Amount <= 0:
			return nil, ErrNoAmount
		}
		return []any{PaymentRequested(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, _ Pay, s *Payment) ([]any, error) {
		switch {
		case s.Cancelled:
			return nil, ErrPaymentCancelled
		case s.Paid:
			return nil, ErrAlreadyPaid
		}
		return []any{PaymentReceived{OrderID: s.OrderID, Amount: s.Amount}}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c CancelPayment, s *Payment) ([]any, error) {
		switch {
		case s.Paid:
			return nil, ErrPaid
		case s.Cancelled:
			return nil, nil
		}
		return []any{PaymentCancelled{OrderID: s.OrderID, Reason: c.Reason}}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c Refund, s *Payment) ([]any, error) {
		switch {
		case !s.Paid:
			return nil, ErrNotPaid
		case s.Refunded:
			return nil, nil
		}
		return []any{PaymentRefunded{OrderID: s.OrderID, Amount: s.Amount, Reason: c.Reason}}, nil
	})
	aggregates.Apply(a, func(s *Payment, e PaymentRequested) { s.OrderID, s.Amount = e.OrderID, e.Amount })
	aggregates.Apply(a, func(s *Payment, _ PaymentReceived) { s.Paid = true })
	aggregates.Apply(a, func(s *Payment, _ PaymentCancelled) { s.Cancelled = true })
	aggregates.Apply(a, func(s *Payment, _ PaymentRefunded) { s.Refunded = true })
	return a
}
