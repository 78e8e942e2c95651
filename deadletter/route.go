package deadletter

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handling is what a consumer has for a record's type.
type Handling uint8

const (
	Untyped   Handling = iota // the record has no recq-type header
	Unhandled                 // no handler of the consumer takes its type
	Handled                   // a handler takes it
)

// Step is what a consumer does with a record it polled.
type Step uint8

const (
	// Handle: hand it to its handler (Verdict.Redriven is set for a
	// redrive of a dead event).
	Handle Step = iota
	// Skip: nothing to do (Verdict.Why says why, when it is worth a log
	// line).
	Skip
	// Park: write it to the queue behind Verdict.Behind, a dead event of
	// its key that is still undecided.
	Park
	// DeadUntyped: write it to the queue, ReasonNoType.
	DeadUntyped
)

// Verdict is the queue's answer for one record.
type Verdict struct {
	Do Step
	// Behind: for Park, the id of the dead event the record waits for.
	Behind string
	// Redriven: for a record of the retry topic, the dead event it
	// redrives (zero for other records).
	Redriven Redriven
	// Replay: a redriven event handled before (a consumer that lost its
	// positions rebuilds): handle it, record nothing.
	Replay bool
	// Why: for Skip, a reason to log; empty when skipping is routine.
	Why string
}

// Route says what a consumer of the queue's group does with rec, a record
// of its topics or of its retry topic, given what it has for rec's type
// and whether it parks a key's events behind its dead one. It is the one
// question a consumer asks the queue before handling a record:
//
//   - a record already in the queue (it died before a crash or a
//     rebalance) is skipped: the queue decides its fate;
//   - a record without a type is dead, one nobody handles skipped;
//   - with parking, a record whose key has an undecided dead event
//     earlier in the stream is parked behind it;
//   - a record of the retry topic is handled only if it is its dead
//     event's current redrive (not discarded, failed or redriven again
//     since), else skipped; Route syncs the queue once when the redrive's
//     decision is not read yet, which is the only error it returns.
func (q *Queue) Route(ctx context.Context, rec *kgo.Record, h Handling, parking bool) (Verdict, error) {
	x := q.idx
	if rec.Topic == RetryTopic(q.group) {
		d, ok := ParseRedriven(rec)
		if !ok {
			return Verdict{Do: Skip, Why: "a record of the retry topic that names no dead event"}, nil
		}
		st, ok := x.redriveAt(d.ID, d.Generation, rec.Partition, rec.Offset)
		if !ok {
			// The redrive's decision is on the actions topic, written in
			// the same transaction; the index may not have read it yet.
			if err := q.Sync(ctx); err != nil {
				return Verdict{}, err
			}
			st, ok = x.redriveAt(d.ID, d.Generation, rec.Partition, rec.Offset)
		}
		if !ok {
			return Verdict{Do: Skip, Redriven: d, Why: "a redriven event that is no longer being redriven (discarded, failed again or redriven again)"}, nil
		}
		if b := x.blockerOfRedriven(rec.Key, d.ID); parking && b != "" {
			return Verdict{Do: Park, Behind: b, Redriven: d}, nil
		}
		return Verdict{Do: Handle, Redriven: d, Replay: st == StatusRedriven}, nil
	}
	switch {
	case x.has(rec.Topic, rec.Partition, rec.Offset):
		return Verdict{Do: Skip}, nil
	case h == Untyped:
		return Verdict{Do: DeadUntyped}, nil
	case h == Unhandled:
		return Verdict{Do: Skip}, nil
	}
	if b := x.blocker(rec.Key, rec.Topic, rec.Partition, rec.Offset); parking && b != "" {
		return Verdict{Do: Park, Behind: b}, nil
	}
	return Verdict{Do: Handle}, nil
}
