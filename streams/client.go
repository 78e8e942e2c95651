package streams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/tracing"
)

// ErrBrokerUnreachable is returned when no seed broker answers in time.
var ErrBrokerUnreachable = errors.New("no Kafka broker reachable")

// DefaultDialTimeout bounds how long recq waits for a broker before it says
// the broker is unreachable, instead of hanging.
const DefaultDialTimeout = 5 * time.Second

// clientDefaults are the options every recq client starts from; callers'
// options come after them and win.
func clientDefaults(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("recq"),
		kgo.DialTimeout(DefaultDialTimeout),
		// Transactions are how recq writes exactly once; readers must not
		// see aborted or in-flight transactional records.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Every record any recq client produces gets its send span and
		// carries its trace, once tracing.Setup has turned tracing on.
		tracing.ProducerHooks(FlowOf),
	}
}

// FlowOf is r's envelope as tracing names it, read in one pass over its
// headers. The ids are cut from one string: one allocation per span
// instead of one per id.
func FlowOf(r *kgo.Record) tracing.Flow {
	var vs [5][]byte // in Flow's order
	n := 0
	for _, h := range r.Headers {
		if i := flowField(h.Key); i >= 0 {
			n += len(h.Value) - len(vs[i])
			vs[i] = h.Value
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range vs {
		b.Write(v)
	}
	all := b.String()
	var ids [5]string
	at := 0
	for i, v := range vs {
		ids[i], at = all[at:at+len(v)], at+len(v)
	}
	return tracing.Flow{MessageID: ids[0], CorrelationID: ids[1], CausationID: ids[2], Type: ids[3], AggregateID: ids[4]}
}

// flowField is the index in FlowOf's order of the header key, or -1.
func flowField(key string) int {
	switch key {
	case HeaderID:
		return 0
	case HeaderCorrelationID:
		return 1
	case HeaderCausationID:
		return 2
	case HeaderType:
		return 3
	case HeaderAggregateID:
		return 4
	}
	return -1
}

// NewClient returns a franz-go client for brokers with recq's defaults
// (client id "recq", a dial timeout, read-committed fetches), followed by opts.
// It does not contact the brokers; see Ping.
func NewClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("streams: no brokers given")
	}
	cl, err := kgo.NewClient(append(clientDefaults(brokers), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("streams: new client: %w", err)
	}
	return cl, nil
}

// errNoKafkaAnswer is a connection that opened but did not answer in
// Kafka's protocol in time: some other server on the port.
var errNoKafkaAnswer = errors.New("a connection opened but nothing answered in Kafka's protocol (is it a Kafka port?)")

// Dial returns a client for brokers (NewClient, with opts) that has
// answered a ping within DefaultDialTimeout (or ctx's deadline if sooner),
// so a wrong or stopped broker is reported at once instead of as a hang
// later. No answer gives an error wrapping ErrBrokerUnreachable, which
// tells a port where something listens but does not speak Kafka from one
// where nothing does. The bound holds even then: franz-go reads the first
// answer on a new connection under its own timeout, whatever the ping's
// context says, so the client is closed at the deadline.
func Dial(ctx context.Context, brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	var opened atomic.Bool // a TCP connection opened: something listens there
	d := net.Dialer{Timeout: DefaultDialTimeout}
	dialer := kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, host)
		if err == nil {
			opened.Store(true)
		}
		return c, err
	})
	cl, err := NewClient(brokers, append([]kgo.Opt{dialer}, opts...)...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	stopClose := context.AfterFunc(pctx, cl.Close)
	err = cl.Ping(pctx)
	closed := !stopClose() // the deadline (or ctx) closed the client under the ping
	switch {
	case !closed && err == nil:
		return cl, nil
	case !closed:
		cl.Close()
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case opened.Load():
		err = errNoKafkaAnswer
	case err == nil:
		err = pctx.Err()
	}
	return nil, fmt.Errorf("%w at %s: %w", ErrBrokerUnreachable, strings.Join(brokers, ","), err)
}
