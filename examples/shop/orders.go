package shop

import (
	"context"
	"strings"

	"github.com/recq/recq/aggregates"
)

// Order is an order's state, rebuilt from its events.
type Order struct {
	ID        string
	Amount    int64
	Shipped   bool
	Cancelled bool
}

// Orders defines the orders aggregate: an order has an id and an amount;
// it is shipped or cancelled, never both. Shipping or cancelling twice
// changes nothing.
func Orders() *aggregates.Aggregate[Order] {
	a := aggregates.New[Order](OrdersName)
	aggregates.Create(a, func(_ context.Context, c PlaceOrder, s *Order) ([]any, error) {
		switch {
		case s.ID != "":
			return nil, ErrAlreadyPlaced
		case strings.TrimSpace(c.OrderID) == "":
			return nil, ErrNoOrderID
		case c.Amount <= 0:
			return nil, ErrNoAmount
		}
		return []any{OrderPlaced(c)}, nil
	})
	aggregates.Handle(a, func(_ context.Context, _ ShipOrder, s *Order) ([]any, error) {
		switch {
		case s.Cancelled:
			return nil, ErrOrderCancelled
		case s.Shipped:
			return nil, nil
		}
		return []any{OrderShipped{OrderID: s.ID}}, nil
	})
	aggregates.Handle(a, func(_ context.Context, c CancelOrder, s *Order) ([]any, error) {
		switch {
		case s.Shipped:
			return nil, ErrOrderShipped
		case s.Cancelled:
			return nil, nil
		}
		return []any{OrderCancelled{OrderID: s.ID, Reason: c.Reason}}, nil
	})
	aggregates.Apply(a, func(s *Order, e OrderPlaced) { s.ID, s.Amount = e.OrderID, e.Amount })
	aggregates.Apply(a, func(s *Order, _ OrderShipped) { s.Shipped = true })
	aggregates.Apply(a, func(s *Order, _ OrderCancelled) { s.Cancelled = true })
	return a
}
