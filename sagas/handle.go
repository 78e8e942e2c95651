package sagas

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/deadletter"
	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/streams"
)

// route is the first step of an input event: it reads the association
// and produces the event, unchanged, to the routed topic keyed by it, so
// every event of one association meets in one partition. Nothing of an
// instance is touched here.
func (r *Runner[S]) route(ctx context.Context, rt *route[S], rec *kgo.Record, md consumers.Metadata) error {
	evt, err := rt.decode(ctx, r.codec, rec.Topic, rec.Value)
	if err != nil {
		return fmt.Errorf("sagas: decode %s at %s/%d@%d: %w", md.Type(), md.Topic, md.Partition, md.Offset, err)
	}
	a, err := rt.associate(evt)
	if err != nil {
		return err
	}
	// The key is the association, and so is one header: one copy of it
	// serves both. The source and time share another.
	ab := []byte(a)
	b := make([]byte, 0, len(md.Topic)+40)
	b = append(append(b, md.Topic...), '/')
	b = append(strconv.AppendInt(b, int64(md.Partition), 10), '@')
	b = strconv.AppendInt(b, md.Offset, 10)
	src := len(b)
	b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	out, stamped := r.copyRecord(rec, ab,
		kgo.RecordHeader{Key: HeaderAssociation, Value: ab},
		kgo.RecordHeader{Key: HeaderSource, Value: b[:src:src]},
		kgo.RecordHeader{Key: HeaderTime, Value: b[src:]})
	r.produce(ctx, state.Partition{Topic: rec.Topic, Partition: rec.Partition}, out, stamped)
	return nil
}

// copied is a copy of a record with room for its headers, in one
// allocation: routing allocates a copy of every event.
type copied struct {
	rec kgo.Record
	hdr [12]kgo.RecordHeader
}

// copyRecord is rec for the routed topic, keyed and placed by key, with
// its headers and timestamp (the event's time, which deadlines compare),
// set's headers in place of any it had of their keys, and its envelope
// completed as streams.Stamp would: the record's own id as causation, and
// as correlation when it has none. Doing that here, in the one pass that
// copies the headers, spares reading the envelope again, which was a tenth
// of a saga's CPU. stamped is false when the record has no id, for the
// publisher to give it one.
func (r *Runner[S]) copyRecord(rec *kgo.Record, key []byte, set ...kgo.RecordHeader) (_ *kgo.Record, stamped bool) {
	c := &copied{}
	c.rec = kgo.Record{Topic: r.routed, Key: key, Value: rec.Value, Timestamp: rec.Timestamp, Partition: streams.KeyPartition(key, r.partitions)}
	hs := c.hdr[:0]
	if n := len(rec.Headers) + len(set) + 2; n > len(c.hdr) {
		hs = make([]kgo.RecordHeader, 0, n)
	}
	var id []byte
	var corr, cause bool
	for _, h := range rec.Headers {
		switch h.Key {
		case streams.HeaderID:
			id = h.Value
		case streams.HeaderCorrelationID:
			corr = true
		case streams.HeaderCausationID:
			cause = true
		}
		if !slices.ContainsFunc(set, func(x kgo.RecordHeader) bool { return x.Key == h.Key }) {
			hs = append(hs, h)
		}
	}
	hs = append(hs, set...)
	if len(id) > 0 {
		if !corr {
			hs = append(hs, kgo.RecordHeader{Key: streams.HeaderCorrelationID, Value: id})
		}
		if !cause {
			hs = append(hs, kgo.RecordHeader{Key: streams.HeaderCausationID, Value: id})
		}
	}
	c.rec.Headers = hs
	return &c.rec, len(id) > 0
}

// handleEvent is the second step: an event of the routed topic is handled
// for its instance, by the member owning the instance's partition.
func (r *Runner[S]) handleEvent(ctx context.Context, rt *route[S], rec *kgo.Record, md consumers.Metadata) error {
	ev, err := readEvent(rec, md)
	if err != nil {
		return err
	}
	h := r.home(md.Partition)
	h.lock()
	defer h.mu.Unlock()
	is := h.view
	v, err := r.eng.locate(ctx, is, rt, ev)
	switch {
	case err != nil:
		return err
	case v.skip != "":
		r.log.Debug("event skipped: "+v.skip, "id", ev.id, "type", ev.typ)
		return nil
	case v.forward != "":
		out, stamped := r.copyRecord(rec, []byte(v.forward), kgo.RecordHeader{Key: HeaderInstance, Value: []byte(v.forward)})
		r.produce(ctx, state.Partition{Topic: rec.Topic, Partition: rec.Partition}, out, stamped)
		return nil
	}
	evt, err := rt.decode(ctx, r.codec, rec.Topic, rec.Value)
	if err != nil {
		return fmt.Errorf("sagas: decode %s at %s/%d@%d: %w", md.Type(), md.Topic, md.Partition, md.Offset, err)
	}
	out, err := r.eng.handle(ctx, is, v.in, v.newID, md.Partition, rt, evt, ev)
	if err != nil || out == nil {
		return err // nil: a copy of an event the instance handled
	}
	r.save(ctx, h, md.Partition, v.in, out)
	return nil
}

// handleFiring handles a deadline's firing record: the deadline fires if
// it is still pending, so a second firing does nothing.
func (r *Runner[S]) handleFiring(ctx context.Context, rec *kgo.Record, md consumers.Metadata) error {
	id, _ := streams.Header(rec, HeaderInstance)
	dl, _ := streams.Header(rec, HeaderDeadline)
	if id == "" || dl == "" {
		return fmt.Errorf("sagas: a %s record at %s/%d@%d without %s and %s headers: not written by a saga runner", DeadlineType, md.Topic, md.Partition, md.Offset, HeaderInstance, HeaderDeadline)
	}
	h := r.home(md.Partition)
	h.lock()
	defer h.mu.Unlock()
	is := h.view
	in, err := is.load(ctx, id)
	if err != nil || in == nil {
		return err
	}
	out, err := r.eng.fire(ctx, is, in, dl)
	if err != nil || out == nil {
		return err
	}
	r.save(ctx, h, md.Partition, in, out)
	return nil
}

// save queues the instance's change in the batch, keeps it as this
// member's latest, and tells the timers once the batch commits.
func (r *Runner[S]) save(ctx context.Context, h *home[S], partition int32, old, out *store.Instance) {
	r.store.Save(ctx, r.group, old, out)
	h.inst[out.ID] = out
	var before []store.Deadline
	if old != nil {
		before = old.Deadlines
	}
	after := out.Deadlines
	if len(before) == 0 && len(after) == 0 && !out.Ended {
		return // nothing for the timers: most events, spared a closure
	}
	state.OnCommit(ctx, func() {
		r.timers.update(partition, out.ID, before, after)
		if out.Ended {
			h.ended(out)
		}
	})
}

// firing is the value of a firing record, for people reading the topic.
type firing struct {
	Instance string    `json:"instance"`
	Deadline string    `json:"deadline"`
	Name     string    `json:"name"`
	Due      time.Time `json:"due"`
}

// fire produces the firing record of a due deadline to the instance's
// partition. Its id is the deadline's, on every firing.
func (r *Runner[S]) fire(partition int32, d store.Due) {
	v, _ := json.Marshal(firing{Instance: d.Instance, Deadline: d.ID, Name: d.Name, Due: d.Due})
	rec := &kgo.Record{Topic: r.routed, Key: []byte(d.Instance), Value: v, Partition: partition}
	streams.Envelope{Type: DeadlineType, ID: d.ID}.Write(rec)
	streams.SetHeader(rec, HeaderInstance, d.Instance)
	streams.SetHeader(rec, HeaderDeadline, d.ID)
	r.pub.PublishAsync(context.Background(), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			r.log.Warn("producing a deadline's firing failed; it fires again later", "instance", d.Instance, "deadline", d.Name, "err", err)
		}
	})
}

// sagaHeaders are the saga's headers of a routed record, as they are in
// it (a string is made only of what is kept).
type sagaHeaders struct {
	assoc, target, source, time []byte
}

// read takes them in one pass over the headers: a routed record carries
// the source's headers too, and a pass per header was a tenth of handling.
func (sh *sagaHeaders) read(rec *kgo.Record) {
	for _, h := range rec.Headers {
		if !strings.HasPrefix(h.Key, "recq-saga-") {
			continue
		}
		switch h.Key {
		case HeaderAssociation:
			sh.assoc = h.Value
		case HeaderInstance:
			sh.target = h.Value
		case HeaderSource:
			sh.source = h.Value
		case HeaderTime:
			sh.time = h.Value
		}
	}
}

// readEvent reads what the saga headers of a routed event say.
func readEvent(rec *kgo.Record, md consumers.Metadata) (event, error) {
	var sh sagaHeaders
	sh.read(rec)
	ev := event{id: md.ID(), typ: md.Type(), at: rec.Timestamp.UTC(), assoc: string(sh.assoc), source: string(sh.source)}
	if len(sh.target) > 0 {
		ev.target = string(sh.target)
	}
	from, off, ok := strings.Cut(ev.source, "@")
	n, err := strconv.ParseInt(off, 10, 64)
	if ev.assoc == "" || !ok || err != nil {
		return ev, fmt.Errorf("sagas: routed record at %s/%d@%d without valid %s and %s headers (%q, %q): not written by a saga runner", md.Topic, md.Partition, md.Offset, HeaderAssociation, HeaderSource, ev.assoc, ev.source)
	}
	ev.from, ev.offset = from, n
	if ms, ok := millis(sh.time); ok {
		ev.at = time.UnixMilli(ms).UTC()
	}
	return ev, nil
}

// millis reads HeaderTime's decimal milliseconds without making a string
// of them.
func millis(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// home returns the member's view of a routed partition.
func (r *Runner[S]) home(p int32) *home[S] {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.homes[p]
	if h == nil {
		h = &home[S]{inst: map[string]*store.Instance{}, states: map[string]held[S]{}}
		h.view = view[S]{r, h}
		r.homes[p] = h
	}
	return h
}

// view finds instances for the engine: the member's own first (they are
// ahead of the store by the batches not committed yet), then the store.
type view[S any] struct {
	r *Runner[S]
	h *home[S]
}

func (v view[S]) load(ctx context.Context, id string) (*store.Instance, error) {
	if in, ok := v.h.inst[id]; ok {
		return in, nil
	}
	in, err := v.r.store.Load(ctx, v.r.group, id)
	if err == nil && in != nil && !in.Ended {
		v.h.inst[id] = in
	}
	return in, err
}

func (v view[S]) resolve(ctx context.Context, assoc string) (*store.Instance, string, error) {
	own, ok := v.h.inst[assoc]
	if ok && slices.Contains(own.Associations, assoc) {
		return own, "", nil
	}
	got, ahead := v.h.ahead[assoc]
	if ahead {
		delete(v.h.ahead, assoc)
	} else {
		rs, err := v.r.store.Resolve(ctx, v.r.group, assoc)
		if err != nil {
			return nil, "", err
		}
		got = rs[0]
	}
	stored, indexed := got.Own, got.Indexed
	if !ok && stored != nil && !stored.Ended {
		v.h.inst[assoc] = stored
	}
	if ok {
		stored = own
	}
	return stored, indexed, nil
}

// produce sends rec, a copy of the record in hand, counted as in flight
// for the batch of key until the broker acknowledges it; a record the
// broker refused is sent again by the batch's Flush. A copy stamped by
// copyRecord goes to the client as it is; one without an id gets one from
// the publisher.
func (r *Runner[S]) produce(ctx context.Context, key state.Partition, rec *kgo.Record, stamped bool) {
	f := r.flight(key)
	f.add()
	if ctx.Done() != nil { // handlers' contexts are not cancelled: spare a context per record
		ctx = context.WithoutCancel(ctx)
	}
	if stamped {
		r.pub.Client().Produce(ctx, rec, f.promise)
		return
	}
	r.pub.PublishAsync(ctx, rec, f.promise)
}

func (r *Runner[S]) flight(key state.Partition) *flight {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.flying[key]
	if f == nil {
		f = &flight{}
		f.promise = f.done
		r.flying[key] = f
	}
	return f
}

// flight counts a batch partition's records in flight.
type flight struct {
	promise func(*kgo.Record, error) // done, made once
	mu      sync.Mutex
	n       int
	idle    chan struct{} // closed when n reaches 0
	failed  []*kgo.Record
}

func (f *flight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *flight) done(rec *kgo.Record, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.failed = append(f.failed, rec)
	}
	if f.n--; f.n == 0 {
		close(f.idle)
	}
}

// wait returns once nothing is in flight, or ctx ended, with the records
// that failed (taken: the caller sends them again).
func (f *flight) wait(ctx context.Context) ([]*kgo.Record, error) {
	f.mu.Lock()
	idle, n := f.idle, f.n
	f.mu.Unlock()
	if n > 0 {
		select {
		case <-idle:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	failed := f.failed
	f.failed = nil
	return failed, nil
}

// participant is the runner's seam in the consumers loop.
type participant[S any] struct{ r *Runner[S] }

func (p participant[S]) Claimed(ctx context.Context, l state.Lease) error {
	r := p.r
	switch l.Partition.Topic {
	case r.routed:
		dues, err := r.store.Deadlines(ctx, r.group, l.Partition.Partition)
		if err != nil {
			return err
		}
		r.forget(l.Partition.Partition)
		r.timers.replace(l.Partition.Partition, dues)
	case deadletter.RetryTopic(r.group):
		// Its batches write the instances of the routed partition of the
		// same number: what the member holds of them may be ahead of the
		// store now.
		r.forget(l.Partition.Partition)
	}
	return nil
}

// Fetched resolves, in one round trip, the associations of a routed
// batch's events whose instances the member does not hold: a batch of new
// instances otherwise asks the store once per instance. A record takes its
// answer when it is handled, instead of asking; what the batch itself
// changes is held, and looked up first.
func (p participant[S]) Fetched(ctx context.Context, key state.Partition, recs []*kgo.Record) {
	r := p.r
	if key.Topic != r.routed {
		return
	}
	h := r.home(key.Partition)
	h.lock()
	defer h.mu.Unlock()
	h.ahead = nil
	var asked []string
	seen := map[string]bool{}
	for _, rec := range recs {
		var sh sagaHeaders
		sh.read(rec)
		if len(sh.assoc) == 0 || len(sh.target) > 0 || seen[string(sh.assoc)] {
			continue
		}
		a := string(sh.assoc)
		seen[a] = true
		if own, ok := h.inst[a]; ok && slices.Contains(own.Associations, a) {
			continue
		}
		asked = append(asked, a)
	}
	if len(asked) == 0 {
		return
	}
	rs, err := r.store.Resolve(ctx, r.group, asked...)
	if err != nil {
		return // each record asks again, and fails or retries on its own
	}
	h.ahead = make(map[string]store.Resolved, len(asked))
	for i, a := range asked {
		h.ahead[a] = rs[i]
	}
}

func (p participant[S]) Released(key state.Partition) {
	r := p.r
	if key.Topic == r.routed {
		r.forget(key.Partition)
		r.timers.drop(key.Partition)
	}
}

func (p participant[S]) Flush(ctx context.Context, key state.Partition) error {
	f := p.r.flight(key)
	failed, err := f.wait(ctx)
	if err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	if err := p.r.pub.Publish(ctx, failed...); err != nil {
		// Keep what still failed for the next attempt.
		f.mu.Lock()
		f.failed = append(f.failed, failed...)
		f.mu.Unlock()
		return fmt.Errorf("sagas: %s: routing records before the commit of %s: %w", p.r.group, key, err)
	}
	return nil
}

// forget drops what the member holds of a routed partition's instances.
func (r *Runner[S]) forget(p int32) {
	h := r.home(p)
	h.lock()
	h.inst, h.states, h.ahead = map[string]*store.Instance{}, map[string]held[S]{}, nil
	h.mu.Unlock()
}
