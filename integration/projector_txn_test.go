package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/internal/clock"
	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/streams"
)

// txnHeader names, on every record the transactional producers write, the
// transaction it belongs to.
const txnHeader = "test-txn"

// txns is what the transactional producers did: the records of each
// committed transaction, and the aborted transactions.
type txns struct {
	mu        sync.Mutex
	committed map[string]int
	aborted   map[string]bool
	held      int // transactions left open for a while
}

// txnProducing writes n events over lists lists from producers
// transactional producers (franz-go, one transactional id each), in
// transactions of 20 to 300 events: about one in six is aborted, one in
// twelve is left open for 0.5 to 2 s before it ends (committed, or one in
// three aborted), and the rest are committed at once. e.published counts
// every offset written: records, and each transaction's marker in each
// partition it wrote to. Wait for the producers with <-done.
func (e *statsEnv) txnProducing(ctx context.Context, producers, n, lists int) (*txns, <-chan error) {
	e.t.Helper()
	log := &txns{committed: map[string]int{}, aborted: map[string]bool{}}
	errs := make(chan error, producers)
	var wg sync.WaitGroup
	for i := range producers {
		cl := testenv.Client(e.t, e.dev.Addr, kgo.TransactionalID(fmt.Sprintf("upstream-%d", i)))
		wg.Go(func() { errs <- e.produceTxns(ctx, cl, fmt.Sprintf("p%d", i), n/producers, lists, log) })
	}
	done := make(chan error, 1)
	go func() {
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		done <- errors.Join(all...)
	}()
	return log, done
}

// produceTxns is one transactional producer's loop: n events.
func (e *statsEnv) produceTxns(ctx context.Context, cl *kgo.Client, name string, n, lists int, log *txns) error {
	for sent, j := 0, 0; sent < n; j++ {
		tx := fmt.Sprintf("%s-t%d", name, j)
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("%s: begin: %w", tx, err)
		}
		size := min(20+rand.IntN(281), n-sent)
		var mu sync.Mutex
		var produceErr error
		parts := map[int32]bool{}
		for k := range size {
			rec, err := e.event(ctx, lists, sent+k)
			if err != nil {
				return err
			}
			streams.SetHeader(rec, txnHeader, tx)
			cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				produceErr = cmp.Or(produceErr, err)
				parts[r.Partition] = true
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("%s: flush: %w", tx, err)
		}
		if produceErr != nil {
			return fmt.Errorf("%s: produce: %w", tx, produceErr)
		}
		end, held := kgo.TryCommit, false
		switch r := rand.IntN(100); {
		case r < 16:
			end = kgo.TryAbort
		case r < 24:
			held = true
			if !clock.Sleep(ctx, time.Duration(500+rand.IntN(1500))*time.Millisecond) {
				return ctx.Err()
			}
			if rand.IntN(3) == 0 {
				end = kgo.TryAbort
			}
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			return fmt.Errorf("%s: end: %w", tx, err)
		}
		log.mu.Lock()
		if end == kgo.TryAbort {
			log.aborted[tx] = true
		} else {
			log.committed[tx] = size
		}
		if held {
			log.held++
		}
		log.mu.Unlock()
		sent += size
		e.published.Add(int64(size + len(parts)))
		if !clock.Sleep(ctx, time.Duration(rand.IntN(30))*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// Several transactional producers write the events upstream of the stats
// projector: some transactions are aborted, some stay open for a while
// (holding the partitions' last stable offset back). The projector is
// killed with SIGKILL three times while they write, and restarted each
// time. The topic read committed holds exactly the committed transactions'
// events, and at the end every list's stats equal their fold: nothing of
// an aborted transaction applied, nothing lost, nothing counted twice.
func TestProjectorKill9TransactionalProducers(t *testing.T) {
	const events, lists, kills = 45_000, 300, 3
	const group = "todo.stats.v1"
	e := newStatsEnv(t, testenv.Redis(t))
	procs := map[string]*testenv.Proc{}
	dumpOnFailure(t, procs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log, done := e.txnProducing(ctx, 3, events, lists)
	e.killRounds(procs, group, "txn", kills, events, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(group, 3*time.Minute)

	// The fold below reads the topic read committed: it must see exactly
	// the committed transactions' records.
	read := map[string]int{}
	for _, r := range testenv.ReadTopic(t, e.dev.Addr, eventsTopic) {
		tx, _ := streams.Header(r, txnHeader)
		if log.aborted[tx] {
			t.Fatalf("a record of aborted transaction %s was read committed", tx)
		}
		read[tx]++
	}
	if !maps.Equal(read, log.committed) {
		t.Fatalf("records read committed per transaction differ from those committed: %d transactions read, %d committed", len(read), len(log.committed))
	}
	t.Logf("%d transactions committed, %d aborted, %d held open for a while", len(log.committed), len(log.aborted), log.held)
	e.check(group, e.fold())
}
