package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker killed with transactions open leaves their records in the log
// with no marker after them. kfake, loading such a log, counts them as
// aborted for read-committed fetches, but writes no abort marker: every
// reader that decides transactions from their markers (streams'
// CommittedFilter: an aggregate's history, the registry's log, kcat or
// any read-uncommitted client) waits for one forever. Worse, the
// producer's id lives on (its next epoch), so its next transaction's
// commit marker would seem to commit the old records too. Kafka's
// coordinator always ends such a transaction with a marker; so does recq
// dev, before it serves anyone: after a start that did not follow a clean
// stop, it reads every partition and writes an abort marker after each
// transaction left without one.

// cleanMark is the file a clean stop leaves in the data dir; a start
// without it (a killed process, a power cut) recovers.
const cleanMark = ".recq-clean-stop"

// gate is the broker's listener: while the broker recovers it accepts only
// the recovering client's in-process connections, so no client sees the
// log, or begins a transaction, before its open transactions are ended.
// Clients connecting meanwhile wait in the socket's backlog.
type gate struct {
	net.Listener
	pipes     chan net.Conn
	open      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newGate(ln net.Listener) *gate {
	return &gate{Listener: ln, pipes: make(chan net.Conn), open: make(chan struct{}), closed: make(chan struct{})}
}

func (g *gate) Accept() (net.Conn, error) {
	select {
	case c := <-g.pipes:
		return c, nil
	case <-g.open:
	case <-g.closed:
		return nil, net.ErrClosed
	}
	return g.Listener.Accept()
}

func (g *gate) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return g.Listener.Close()
}

// dial connects an in-process client to the broker through the gate.
func (g *gate) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case g.pipes <- server:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-g.closed:
		return nil, net.ErrClosed
	}
}

// stoppedCleanly reports whether the data dir's last broker stopped
// cleanly (or the dir is new), and forgets it: only the next clean stop
// marks the dir again.
func stoppedCleanly(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); errors.Is(err, os.ErrNotExist) {
		return true, nil // nothing persisted yet
	}
	err := os.Remove(filepath.Join(dir, cleanMark))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("broker: data dir: %w", err)
}

func markCleanStop(dir string) error {
	return os.WriteFile(filepath.Join(dir, cleanMark), nil, 0o644)
}

// unmarked is a transaction whose records have no marker after them.
type unmarked struct {
	topic     string
	partition int32
	producer  int64
	epoch     int16
	first     int64
}

// recoverOpen ends, with an abort marker, every transaction the log holds
// without one, through a client connected by dial.
func recoverOpen(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string, log io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(dial),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}))
	if err != nil {
		return err
	}
	defer cl.Close()
	open, err := findUnmarked(ctx, cl)
	if err != nil {
		return err
	}
	for _, u := range open {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = u.producer, u.epoch, false
		t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		t.Topic, t.Partitions = u.topic, []int32{u.partition}
		m.Topics = append(m.Topics, t)
		req.Markers = append(req.Markers, m)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			for _, rm := range resp.Markers {
				for _, rt := range rm.Topics {
					for _, rp := range rt.Partitions {
						if rp.ErrorCode != 0 {
							err = fmt.Errorf("error code %d", rp.ErrorCode)
						}
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("abort the transaction of producer %d left open in %s/%d at offset %d: %w", u.producer, u.topic, u.partition, u.first, err)
		}
		fmt.Fprintf(log, "recq dev: aborted a transaction left open by the stop before (producer id %d, %s/%d from offset %d): its records were never committed\n",
			u.producer, u.topic, u.partition, u.first)
	}
	return nil
}

// findUnmarked reads every partition to its end and returns the
// transactions whose records no marker follows.
func findUnmarked(ctx context.Context, cl *kgo.Client) ([]unmarked, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return nil, err
	}
	type part struct {
		next, end int64
		open      map[int64]unmarked
	}
	parts := map[string]map[int32]*part{}
	consume := map[string]map[int32]kgo.Offset{}
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		s, ok := starts.Lookup(e.Topic, e.Partition)
		if e.Err != nil || !ok || s.Err != nil {
			errs = append(errs, fmt.Errorf("offsets of %s/%d: %w", e.Topic, e.Partition, errors.Join(e.Err, s.Err)))
			return
		}
		if s.Offset >= e.Offset {
			return
		}
		if parts[e.Topic] == nil {
			parts[e.Topic], consume[e.Topic] = map[int32]*part{}, map[int32]kgo.Offset{}
		}
		parts[e.Topic][e.Partition] = &part{next: s.Offset, end: e.Offset, open: map[int64]unmarked{}}
		consume[e.Topic][e.Partition] = kgo.NewOffset().At(s.Offset)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	left := 0
	for _, ps := range parts {
		left += len(ps)
	}
	cl.AddConsumePartitions(consume)
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			p := parts[r.Topic][r.Partition]
			if p == nil || p.next >= p.end {
				return
			}
			switch {
			case r.Attrs.IsControl():
				delete(p.open, r.ProducerID)
			case r.Attrs.IsTransactional():
				if _, ok := p.open[r.ProducerID]; !ok {
					p.open[r.ProducerID] = unmarked{topic: r.Topic, partition: r.Partition, producer: r.ProducerID, epoch: r.ProducerEpoch, first: r.Offset}
				}
			}
			if p.next = r.Offset + 1; p.next >= p.end {
				left--
			}
		})
	}
	var out []unmarked
	for _, ps := range parts {
		for _, p := range ps {
			for _, u := range p.open {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

// recoverTimeout bounds the recovery at a start; a log too large to read
// in it is served unrecovered, with a warning.
const recoverTimeout = 5 * time.Minute
