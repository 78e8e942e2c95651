package shop

import (
	"context"
	"fmt"
	"time"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/sagas"
)

// PaymentDue is the saga's deadline: the customer has not paid in time.
const PaymentDue = "payment-due"

// DefaultPaymentTimeout is how long a customer has to pay unless
// SagaConfig.PaymentTimeout says otherwise.
const DefaultPaymentTimeout = 15 * time.Minute

// SagaConfig configures the fulfilment saga.
type SagaConfig struct {
	// PaymentTimeout is how long after the order is placed (its event's
	// time) the payment is due (DefaultPaymentTimeout when zero).
	PaymentTimeout time.Duration
}

// Fulfilment is the state of one order's fulfilment.
type Fulfilment struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
}

// Saga defines shop.fulfilment (group shop.fulfilment.v1), one instance
// per order ("order=<id>"), reading both aggregates' events:
//
//   - OrderPlaced starts it: the payment is requested and due after
//     PaymentTimeout.
//   - PaymentReceived before that: the deadline is cancelled and the order
//     shipped (refunded if the order was cancelled meanwhile); it ends.
//   - The deadline: the order is cancelled, then the payment; a payment
//     that was paid meanwhile is refunded; it ends.
//
// Every command's id is derived from the instance and what it handles, so
// a handler run again (a retry, a crash, a rebuild) is applied once.
func Saga(cfg SagaConfig) *sagas.Saga[Fulfilment] {
	timeout := cfg.PaymentTimeout
	if timeout <= 0 {
		timeout = DefaultPaymentTimeout
	}
	s := sagas.New[Fulfilment]("shop", "fulfilment", 1, aggregates.EventsTopic(OrdersName), aggregates.EventsTopic(PaymentsName))
	sagas.Start(s, sagas.By("order", func(e OrderPlaced) string { return e.OrderID }), func(ctx context.Context, e OrderPlaced, in *sagas.Instance[Fulfilment]) error {
		in.State = Fulfilment{OrderID: e.OrderID, Amount: e.Amount}
		_, err := in.Send(ctx, PaymentsName, e.OrderID, RequestPayment{OrderID: e.OrderID, Amount: e.Amount})
		if err != nil && !Rejected(err, ErrPaymentExists) {
			return fmt.Errorf("shop: request the payment of order %s: %w", e.OrderID, err)
		}
		in.Schedule(PaymentDue, timeout)
		return nil
	})
	sagas.On(s, sagas.By("order", func(e PaymentReceived) string { return e.OrderID }), func(ctx context.Context, e PaymentReceived, in *sagas.Instance[Fulfilment]) error {
		in.Cancel(PaymentDue)
		_, err := in.Send(ctx, OrdersName, in.State.OrderID, ShipOrder{})
		switch {
		case Rejected(err, ErrOrderCancelled):
			if err := refund(ctx, in, "the order was cancelled"); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("shop: ship order %s: %w", in.State.OrderID, err)
		}
		in.End()
		return nil
	})
	sagas.OnDeadline(s, PaymentDue, func(ctx context.Context, in *sagas.Instance[Fulfilment]) error {
		id := in.State.OrderID
		_, err := in.Send(ctx, OrdersName, id, CancelOrder{Reason: "not paid in time"})
		switch {
		case Rejected(err, ErrOrderShipped):
			in.End() // shipped after all: nothing to undo
			return nil
		case err != nil:
			return fmt.Errorf("shop: cancel order %s: %w", id, err)
		}
		_, err = in.Send(ctx, PaymentsName, id, CancelPayment{Reason: "not paid in time"})
		switch {
		case Rejected(err, ErrPaid):
			// Paid at the last moment, after the order was cancelled.
			if err := refund(ctx, in, "paid after the order was cancelled"); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("shop: cancel the payment of order %s: %w", id, err)
		}
		in.End()
		return nil
	})
	return s
}

func refund(ctx context.Context, in *sagas.Instance[Fulfilment], why string) error {
	if _, err := in.Send(ctx, PaymentsName, in.State.OrderID, Refund{Reason: why}); err != nil {
		return fmt.Errorf("shop: refund order %s: %w", in.State.OrderID, err)
	}
	return nil
}
