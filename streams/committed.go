package streams

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CommittedFilter turns the records of one partition, fetched read-uncommitted
// with control records kept (kgo.KeepControlRecords), into its committed
// records in log order. A reader that knows where a range ends needs this:
// a read-committed fetch of a stretch that holds only aborted records
// returns nothing at all, so the reader could never tell it has passed it.
// Here every record, marker or not, moves the reader on, and a transaction's
// records are released (or dropped) when its marker arrives.
//
// A CommittedFilter is for one partition and one goroutine.
type CommittedFilter struct {
	held []heldRecord   // from the first undecided record on, in offset order
	open map[int64]bool // producer ids with undecided records held
}

type heldRecord struct {
	r             *kgo.Record
	decided, keep bool
}

// Add takes the next record of the partition and returns the committed
// records it releases, in order.
func (f *CommittedFilter) Add(r *kgo.Record) []*kgo.Record {
	switch {
	case r.Attrs.IsControl():
		if !f.open[r.ProducerID] {
			return nil
		}
		// The marker's key is a version and a type: 1 commits, 0 aborts.
		commit := len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1
		for i := range f.held {
			if h := &f.held[i]; !h.decided && h.r.ProducerID == r.ProducerID {
				h.decided, h.keep = true, commit
			}
		}
		delete(f.open, r.ProducerID)
	case r.Attrs.IsTransactional():
		if f.open == nil {
			f.open = map[int64]bool{}
		}
		f.open[r.ProducerID] = true
		f.held = append(f.held, heldRecord{r: r})
	default:
		f.held = append(f.held, heldRecord{r: r, decided: true, keep: true})
	}
	var out []*kgo.Record
	i := 0
	for ; i < len(f.held) && f.held[i].decided; i++ {
		if f.held[i].keep {
			out = append(out, f.held[i].r)
		}
	}
	f.held = f.held[i:]
	return out
}

// Undecided reports whether some transaction's records still wait for their
// marker.
func (f *CommittedFilter) Undecided() bool { return len(f.open) > 0 }

// FirstUndecided returns the earliest record still waiting for its
// transaction's marker, or nil.
func (f *CommittedFilter) FirstUndecided() *kgo.Record {
	for _, h := range f.held {
		if !h.decided {
			return h.r
		}
	}
	return nil
}
