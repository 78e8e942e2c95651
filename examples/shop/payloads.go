package shop

// Commands of the orders aggregate (shop.orders), keyed by order id.
type (
	// PlaceOrder creates an order.
	PlaceOrder struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"` // in cents, more than 0
	}
	// ShipOrder ships a placed order; refused once it is cancelled.
	ShipOrder struct{}
	// CancelOrder cancels a placed order; refused once it is shipped.
	CancelOrder struct {
		Reason string `avro:"reason"`
	}
)

// Events of the orders aggregate (shop.orders.events).
type (
	OrderPlaced struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"`
	}
	OrderShipped struct {
		OrderID string `avro:"order_id"`
	}
	OrderCancelled struct {
		OrderID string `avro:"order_id"`
		Reason  string `avro:"reason"`
	}
)

// Commands of the payments aggregate (shop.payments), keyed by the id of
// the order paid for: one payment per order.
type (
	// RequestPayment opens the payment of an order (the saga sends it).
	RequestPayment struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"`
	}
	// Pay is the customer paying; refused once the payment is cancelled
	// or paid.
	Pay struct{}
	// CancelPayment withdraws an unpaid payment; refused once it is paid
	// (the saga then refunds).
	CancelPayment struct {
		Reason string `avro:"reason"`
	}
	// Refund gives a paid amount back; refused unless paid.
	Refund struct {
		Reason string `avro:"reason"`
	}
)

// Events of the payments aggregate (shop.payments.events).
type (
	PaymentRequested struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"`
	}
	PaymentReceived struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"`
	}
	PaymentCancelled struct {
		OrderID string `avro:"order_id"`
		Reason  string `avro:"reason"`
	}
	PaymentRefunded struct {
		OrderID string `avro:"order_id"`
		Amount  int64  `avro:"amount"`
		Reason  string `avro:"reason"`
	}
)
