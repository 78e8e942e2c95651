package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
	}
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

// Dial returns a client for brokers (NewClient, with opts) that has
// answered a ping within DefaultDialTimeout (or ctx's deadline if sooner),
// so a wrong or stopped broker is reported at once instead of as a hang
// later. No answer gives an error wrapping ErrBrokerUnreachable.
func Dial(ctx context.Context, brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := NewClient(brokers, opts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%w at %s: %v", ErrBrokerUnreachable, strings.Join(brokers, ","), err)
	}
	return cl, nil
}
