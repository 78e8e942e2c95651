package aggregates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/streams"
)

// entry is a loaded aggregate: its instance and the ids of the commands
// whose events it contains, each with the version its last event brought
// the aggregate to, so a command sent again is answered as it was the
// first time, not redone.
type entry[S any] struct {
	in       Instance[S]
	seen     map[string]int64 // command id -> version after it (0: not known)
	order    []string         // seen ids, oldest first, for bounded snapshots
	last     *kgo.Record      // the last event written in this batch; its offset is known once produced
	snapshot int64            // version of the last snapshot taken or loaded
}

func (e *entry[S]) remember(id string, version int64) {
	if _, ok := e.seen[id]; !ok {
		e.order = append(e.order, id)
	}
	e.seen[id] = version
}

// answered reports whether the command id was handled, and the version it
// brought the aggregate to (the current one where that is not known).
func (e *entry[S]) answered(id string) (int64, bool) {
	v, ok := e.seen[id]
	if ok && v == 0 {
		v = e.in.Version
	}
	return v, ok
}

// errUndecided marks a load that found some of the aggregate's events in a
// transaction still open after LoadWait: the batch is aborted and tried
// again later, never decided on a history that may still grow.
var errUndecided = errors.New("history not decided yet")

// load returns the aggregate from the cache, or rebuilds it from its
// snapshot and the events after it in its partition of the event topic.
//
// The events are read to the partition's end, not to its last stable
// offset: any open transaction (a crashed predecessor's, a foreign
// producer's) holds that offset below events committed after it. Only the
// aggregate's own records in a transaction still open are waited for, up to
// LoadWait.
func (r *Runner[S]) load(ctx context.Context, k key) (*entry[S], error) {
	r.mu.Lock()
	e := r.cache.get(k)
	r.mu.Unlock()
	if e != nil {
		return e, nil
	}
	if r.agg.stateless {
		e = &entry[S]{seen: map[string]int64{}}
	} else {
		var err error
		if e, err = r.rebuild(ctx, k); errors.Is(err, streams.ErrUndecided) && ctx.Err() == nil {
			return nil, fmt.Errorf("load %s %s: %w: %w", r.agg.name, k.id, errUndecided, err)
		}
		if err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.cache.put(k, e)
	r.mu.Unlock()
	return e, nil
}

// rebuild loads k from its snapshot and the events after it, waiting up
// to LoadWait for the aggregate's undecided ones (a wait past a second is
// logged, so an operator sees what holds the aggregate).
func (r *Runner[S]) rebuild(ctx context.Context, k key) (*entry[S], error) {
	e := &entry[S]{seen: map[string]int64{}}
	from, err := r.restore(ctx, k, e)
	if err != nil {
		return nil, err
	}
	var applyErr error
	kr := streams.KeyRead{Topic: EventsTopic(r.agg.name), Partition: k.partition, From: from, Key: []byte(k.id),
		Wait: LoadWait, WaitingAfter: time.Second, Waiting: func(first *kgo.Record) {
			r.log.Info("loading an aggregate waits for an open transaction that holds some of its events", "aggregate", k.id,
				"partition", k.partition, "offset", first.Offset, "producer_id", first.ProducerID)
		}}
	err = r.history.ReadKey(ctx, kr, func(er *kgo.Record) {
		if applyErr != nil {
			return
		}
		env, _ := streams.ReadEnvelope(er)
		evt, err := r.events.decode(ctx, r.codec, er, env.Type)
		if err != nil {
			applyErr = fmt.Errorf("load %s %s: event at offset %d: %w", r.agg.name, k.id, er.Offset, err)
			return
		}
		applyErr = r.agg.Apply(&e.in, evt)
		if env.CausationID != "" {
			e.remember(env.CausationID, env.AggregateVersion)
		}
	})
	return e, errors.Join(err, applyErr)
}

// snapshotState is what a snapshot holds besides the version.
type snapshotState[S any] struct {
	State S        `json:"state"`
	Seen  []string `json:"seen,omitempty"`
	// SeenAt is the version after each of Seen (absent in older
	// snapshots: those ids answer with the current version).
	SeenAt []int64 `json:"seen_at,omitempty"`
}

// restore loads k's snapshot into e and returns the offset to read events
// from: after the snapshot, or 0 without a usable one.
func (r *Runner[S]) restore(ctx context.Context, k key, e *entry[S]) (int64, error) {
	if r.cfg.snapshots == nil {
		return 0, nil
	}
	snap, err := r.cfg.snapshots.Load(ctx, r.agg.name, k.id)
	if errors.Is(err, snapshot.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load %s %s: %w", r.agg.name, k.id, err)
	}
	var st snapshotState[S]
	if snap.Partition != k.partition || json.Unmarshal(snap.State, &st) != nil {
		// Taken before the partitions changed, or of an older state type:
		// replaying every event is slower but right.
		return 0, nil
	}
	e.in = Instance[S]{State: st.State, Version: snap.Version}
	e.snapshot = snap.Version
	for i, id := range st.Seen {
		var v int64
		if i < len(st.SeenAt) {
			v = st.SeenAt[i]
		}
		e.remember(id, v)
	}
	return snap.Offset + 1, nil
}

// snapshots saves a snapshot of every aggregate of a committed batch that
// has gone cfg.every events past its last one.
func (r *Runner[S]) snapshots(ctx context.Context, keys []key) {
	if r.cfg.snapshots == nil || r.agg.stateless {
		return
	}
	for _, k := range keys {
		r.mu.Lock()
		e := r.cache.get(k)
		r.mu.Unlock()
		if e == nil || e.last == nil || e.in.Version-e.snapshot < r.cfg.every {
			continue
		}
		seen := e.order[max(0, len(e.order)-SnapshotSeen):]
		at := make([]int64, len(seen))
		for i, id := range seen {
			at[i] = e.seen[id]
		}
		b, err := json.Marshal(snapshotState[S]{State: e.in.State, Seen: seen, SeenAt: at})
		if err != nil {
			continue // a state that cannot be JSON is replayed from events
		}
		err = r.cfg.snapshots.Save(ctx, snapshot.Snapshot{
			Aggregate: r.agg.name, ID: k.id, Version: e.in.Version, State: b,
			Partition: k.partition, Offset: e.last.Offset, TakenAt: time.Now(),
		})
		if err == nil {
			e.snapshot = e.in.Version
		}
	}
}
