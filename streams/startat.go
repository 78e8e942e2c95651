package streams

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// StartAt is a position in each partition, where a Reader starts (WithFrom,
// inclusive) or stops (WithTo, exclusive): the beginning, the end, an
// absolute offset, or the first record at or after a time. For group reads
// a start applies only to partitions the group has no committed offset for.
type StartAt struct {
	kind   startKind
	offset int64
	at     time.Time
}

type startKind uint8

const (
	startBeginning startKind = iota
	startEnd
	startOffset
	startTime
)

// FromBeginning starts at the earliest retained record (the zero StartAt).
func FromBeginning() StartAt { return StartAt{kind: startBeginning} }

// FromEnd starts after the last record: only new records are read.
func FromEnd() StartAt { return StartAt{kind: startEnd} }

// FromOffset starts at offset n in every partition (clamped by the broker to
// the partition's range).
func FromOffset(n int64) StartAt { return StartAt{kind: startOffset, offset: n} }

// FromTime starts at the first record whose timestamp is at or after t.
func FromTime(t time.Time) StartAt { return StartAt{kind: startTime, at: t} }

// ParseStartAt reads "beginning", "end", a non-negative offset, or an RFC 3339
// time, the forms the CLI's --from flag accepts.
func ParseStartAt(s string) (StartAt, error) {
	switch s {
	case "beginning", "earliest":
		return FromBeginning(), nil
	case "end", "latest":
		return FromEnd(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return StartAt{}, fmt.Errorf("offset %d is negative", n)
		}
		return FromOffset(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return FromTime(t), nil
	}
	return StartAt{}, fmt.Errorf("%q is not beginning, end, an offset or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", s)
}

func (s StartAt) String() string {
	switch s.kind {
	case startEnd:
		return "end"
	case startOffset:
		return strconv.FormatInt(s.offset, 10)
	case startTime:
		return s.at.Format(time.RFC3339Nano)
	default:
		return "beginning"
	}
}

func (s StartAt) kgoOffset() kgo.Offset {
	switch s.kind {
	case startEnd:
		return kgo.NewOffset().AtEnd()
	case startOffset:
		return kgo.NewOffset().At(s.offset)
	case startTime:
		return kgo.NewOffset().AfterMilli(s.at.UnixMilli())
	default:
		return kgo.NewOffset().AtStart()
	}
}
