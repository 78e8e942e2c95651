// Package shop is recq's order and payment example: two aggregates and
// the saga that coordinates them.
//
//   - shop.orders (Orders): an order is placed, then shipped or cancelled,
//     never both.
//   - shop.payments (Payments), keyed by order id: a payment is requested,
//     then paid or cancelled, never both; a paid one can be refunded.
//   - shop.fulfilment (Saga): when an order is placed it requests the
//     payment and gives the customer PaymentTimeout to pay. Paid in time:
//     the order ships. Not paid in time: the order is cancelled and the
//     payment withdrawn, or refunded if the customer paid at the last
//     moment. A ship refused because the order was cancelled meanwhile is
//     refunded too.
//
// ./aggregates runs both aggregate runners, ./saga runs the saga.
package shop

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// Aggregate names: topics shop.orders.commands, shop.orders.events,
// shop.payments.commands and shop.payments.events.
const (
	OrdersName   = "shop.orders"
	PaymentsName = "shop.payments"
)

// Rejections. An invoker's answer carries only a rejection's message;
// Rejected tells which one it is.
var (
	ErrNoOrderID        = errors.New("an order needs an id")
	ErrNoAmount         = errors.New("the amount must be more than 0")
	ErrAlreadyPlaced    = errors.New("the order is placed already")
	ErrOrderCancelled   = errors.New("the order is cancelled")
	ErrOrderShipped     = errors.New("the order is shipped")
	ErrPaymentExists    = errors.New("the payment is requested already")
	ErrPaymentCancelled = errors.New("the payment is cancelled")
	ErrAlreadyPaid      = errors.New("the payment is paid already")
	ErrPaid             = errors.New("the payment is paid: refund it instead")
	ErrNotPaid          = errors.New("the payment is not paid: nothing to refund")
)

// Rejected reports whether err is the rejection target: the error itself
// (in process), or an aggregate's answer with its message (through an
// aggregates.Invoker, which carries the message only).
func Rejected(err, target error) bool {
	if errors.Is(err, target) {
		return true
	}
	var rej *aggregates.RejectedError
	return errors.As(err, &rej) && rej.Err != nil && rej.Err.Error() == target.Error()
}

// Connect makes the binaries' serde on the registry at registry and runs
// Setup within 30 s.
func Connect(ctx context.Context, brokers []string, registry string, partitions int32) (*schema.Serde, error) {
	src, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return nil, err
	}
	serde, err := schema.NewSerde(src, schema.WithAutoRegister(true))
	if err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return serde, Setup(setup, brokers, serde, partitions)
}

// RedisOptions reads a -redis flag: redis://host:port/db or host:port.
func RedisOptions(v string) (*redis.Options, error) {
	if strings.Contains(v, "://") {
		o, err := redis.ParseURL(v)
		if err != nil {
			return nil, fmt.Errorf("-redis %q: %w (want redis://host:port/db or host:port)", v, err)
		}
		return o, nil
	}
	return &redis.Options{Addr: v}, nil
}

// Setup creates the aggregates' topics (partitions each, if missing) and
// registers the schema of every command and event, so `recq send` and
// foreign clients find them before the first message.
func Setup(ctx context.Context, brokers []string, serde *schema.Serde, partitions int32) error {
	cl, err := streams.Dial(ctx, brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := streams.NewAdmin(cl)
	for _, name := range []string{OrdersName, PaymentsName} {
		if err := aggregates.EnsureTopics(ctx, adm, name, partitions); err != nil {
			return err
		}
	}
	orders, payments := Orders(), Payments()
	for topic, types := range map[string][]reflect.Type{
		aggregates.CommandsTopic(OrdersName):   orders.CommandTypes(),
		aggregates.EventsTopic(OrdersName):     orders.EventTypes(),
		aggregates.CommandsTopic(PaymentsName): payments.CommandTypes(),
		aggregates.EventsTopic(PaymentsName):   payments.EventTypes(),
	} {
		for _, t := range types {
			if err := serde.Register(ctx, topic, reflect.New(t).Interface()); err != nil {
				return fmt.Errorf("shop: register the schema of %v on %s: %w", t, topic, err)
			}
		}
	}
	return nil
}
