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

// Ping checks that a broker answers within DefaultDialTimeout (or ctx's
// deadline if sooner) and returns an error wrapping ErrBrokerUnreachable
// otherwise.
func Ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("%w at %s: %v", ErrBrokerUnreachable, strings.Join(cl.OptValue(kgo.SeedBrokers).([]string), ","), err)
	}
	return nil
}
