package deadletter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

// Load reads group's dead event queue and actions to their ends and
// returns the index: what `recq dlq list` shows. ErrNoQueue if the group
// has none.
func Load(ctx context.Context, brokers []string, group string, opts ...kgo.Opt) (*Index, error) {
	if err := exists(ctx, brokers, group, opts); err != nil {
		return nil, err
	}
	q, err := NewQueue(brokers, group, QueueConfig{}, opts...)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); q.Run(rctx) }()
	err = q.Sync(ctx)
	stop()
	<-done
	if err != nil {
		return nil, err
	}
	return q.idx, nil
}

// missing returns the first of topics that does not exist, or "".
func missing(ctx context.Context, brokers []string, opts []kgo.Opt, topics ...string) (string, error) {
	cl, err := streams.Dial(ctx, brokers, opts...)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	adm := streams.NewAdmin(cl)
	for _, t := range topics {
		if _, err := adm.DescribeTopic(ctx, t); errors.Is(err, streams.ErrTopicNotFound) {
			return t, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", nil
}

func exists(ctx context.Context, brokers []string, group string, opts []kgo.Opt) error {
	t, err := missing(ctx, brokers, opts, Topic(group), ActionsTopic(group))
	if err == nil && t != "" {
		err = fmt.Errorf("deadletter: group %s: %w (topic %s is missing)", group, ErrNoQueue, t)
	}
	return err
}

// ErrNoRedrive is returned by Redrive for a group that consumes no retry
// topic: an aggregate runner, whose senders resend fixed commands.
var ErrNoRedrive = errors.New("group takes no redrives")

func retryExists(ctx context.Context, brokers []string, group string, opts []kgo.Opt) error {
	t, err := missing(ctx, brokers, opts, RetryTopic(group))
	if err == nil && t != "" {
		err = fmt.Errorf("deadletter: group %s: %w: it consumes no %s (an aggregate runner: the sender of a command that could not be read was answered, and sends a fixed one; discard the dead one)",
			group, ErrNoRedrive, t)
	}
	return err
}

// Decision is who takes an action and why.
type Decision struct {
	Who string
	Why string
}

// ErrNothingPending is returned by Redrive and Discard when a key or all
// was selected and no event is pending.
var ErrNothingPending = errors.New("no pending dead events")

// Selection names dead events: IDs (each must be pending), or every
// pending event of Key, or every pending event (All).
type Selection struct {
	IDs []string
	Key string
	All bool
}

func (s Selection) String() string {
	switch {
	case len(s.IDs) > 0:
		return strings.Join(s.IDs, " ")
	case s.Key != "":
		return "key " + s.Key
	}
	return "all"
}

// pending resolves sel against idx: the items, in queue order, or an
// error naming those that are not pending.
func (sel Selection) pending(idx *Index) ([]Item, error) {
	if len(sel.IDs) == 0 {
		if sel.Key == "" && !sel.All {
			return nil, errors.New("select events: ids, a key, or all")
		}
		items := idx.List(Filter{Key: sel.Key, Status: StatusPending})
		if len(items) == 0 {
			return nil, fmt.Errorf("%w (%s)", ErrNothingPending, sel)
		}
		return items, nil
	}
	items := idx.List(Filter{IDs: sel.IDs})
	found := map[string]bool{}
	var errs []error
	for _, it := range items {
		found[it.Entry.ID] = true
		if it.Status != StatusPending {
			errs = append(errs, fmt.Errorf("%s is %s, not pending", it.Entry.ID, it.Status))
		}
	}
	for _, id := range sel.IDs {
		if !found[id] {
			errs = append(errs, fmt.Errorf("%s: no such dead event", id))
		}
	}
	return items, errors.Join(errs...)
}

// Redrive republishes the pending dead events sel names to the group's
// retry topic, which only the group consumes, in queue order, and records
// the decision; both in one Kafka transaction, so an event is redriven
// once or not at all. It returns the actions recorded.
func Redrive(ctx context.Context, brokers []string, group string, sel Selection, d Decision, opts ...kgo.Opt) ([]Action, error) {
	idx, err := Load(ctx, brokers, group, opts...)
	if err != nil {
		return nil, err
	}
	if err := retryExists(ctx, brokers, group, opts); err != nil {
		return nil, err
	}
	items, err := sel.pending(idx)
	if err != nil {
		return nil, fmt.Errorf("deadletter: redrive: %w", err)
	}
	cl, err := streams.Dial(ctx, brokers, append(transactional("redrive", group), opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	acts, err := redriveTx(ctx, cl, group, items, d)
	if err != nil {
		return nil, fmt.Errorf("deadletter: redrive (nothing was redriven): %w", err)
	}
	return acts, nil
}

// transactional are the options of a client that redrives: a transactional
// id of its own (who redrives is not fenced by anyone).
func transactional(what, group string) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID("recq-dlq-" + what + "-" + group + "-" + strconv.FormatUint(rand.Uint64(), 36)),
		kgo.TransactionTimeout(30 * time.Second),
	}
}

// redriveTx writes items' retry records, in order, and their redrive
// actions in one transaction of cl.
func redriveTx(ctx context.Context, cl *kgo.Client, group string, items []Item, d Decision) ([]Action, error) {
	if err := cl.BeginTransaction(); err != nil {
		return nil, err
	}
	acts, err := redrive(ctx, cl, group, items, d)
	if end := cl.EndTransaction(ctx, kgo.TransactionEndTry(err == nil)); err == nil && end != nil {
		err = end
	}
	if err != nil {
		return nil, err
	}
	return acts, nil
}

func redrive(ctx context.Context, cl *kgo.Client, group string, items []Item, d Decision) ([]Action, error) {
	recs := make([]*kgo.Record, len(items))
	for i := range items {
		recs[i] = items[i].Entry.retryRecord(RetryTopic(group))
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	acts := make([]Action, len(items))
	arecs := make([]*kgo.Record, len(items))
	for i, it := range items {
		acts[i] = Action{ID: it.Entry.ID, Action: ActionRedrive, Generation: it.Entry.Generation, Who: d.Who, Why: d.Why, At: now,
			RetryPartition: res[i].Record.Partition, RetryOffset: res[i].Record.Offset}
		arecs[i] = acts[i].record(ActionsTopic(group))
	}
	return acts, cl.ProduceSync(ctx, arecs...).FirstErr()
}

// Discard records that the pending dead events sel names will not be
// handled.
func Discard(ctx context.Context, brokers []string, group string, sel Selection, d Decision, opts ...kgo.Opt) ([]Action, error) {
	if d.Why == "" {
		return nil, errors.New("deadletter: discard: give a reason")
	}
	idx, err := Load(ctx, brokers, group, opts...)
	if err != nil {
		return nil, err
	}
	items, err := sel.pending(idx)
	if err != nil {
		return nil, fmt.Errorf("deadletter: discard: %w", err)
	}
	cl, err := streams.Dial(ctx, brokers, opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	now := time.Now().UTC()
	acts := make([]Action, len(items))
	recs := make([]*kgo.Record, len(items))
	for i, it := range items {
		acts[i] = Action{ID: it.Entry.ID, Action: ActionDiscard, Generation: it.Entry.Generation, Who: d.Who, Why: d.Why, At: now}
		recs[i] = acts[i].record(ActionsTopic(group))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("deadletter: discard: %w", err)
	}
	return acts, nil
}
