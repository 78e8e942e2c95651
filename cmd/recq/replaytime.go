package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/recq/recq/streams"
)

// parseReplayTime reads a --from/--to time: RFC 3339, a date (midnight
// UTC), epoch milliseconds, "now", or a duration before or after now (-24h,
// -7d, +1h30m), the forms rpk's -o @t accepts.
func parseReplayTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return time.UnixMilli(ms), nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if d, err := parseRelative(s); err == nil {
			return now.Add(d), nil
		}
	}
	return time.Time{}, usagef("--%s %q: want an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02), epoch milliseconds, now, or a duration from now (-24h, -7d)", flag, s)
}

// parseRelative is time.ParseDuration plus days ("-7d", "-1d12h").
func parseRelative(s string) (time.Duration, error) {
	sign, rest := s[:1], s[1:]
	var days int64
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, err
		}
		days, rest = n, rest[i+1:]
	}
	d := time.Duration(days) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		d += r
	}
	if sign == "-" {
		d = -d
	}
	return d, nil
}

// offsetBound is a --from-offset/--to-offset value: one offset for every
// partition, or offsets for some ("0=120,2=300").
type offsetBound struct {
	all          int64 // -1: not given for all partitions
	perPartition map[int32]int64
}

func parseOffsetBound(flag, s string) (offsetBound, error) {
	b := offsetBound{all: -1}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		b.all = n
		return b, nil
	}
	b.perPartition = map[int32]int64{}
	for _, part := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(part), "=")
		pn, perr := strconv.ParseInt(p, 10, 32)
		on, oerr := strconv.ParseInt(o, 10, 64)
		if !ok || perr != nil || oerr != nil || pn < 0 || on < 0 {
			return offsetBound{}, usagef("--%s %q: want an offset (120) or partition=offset pairs (0=120,2=300)", flag, s)
		}
		b.perPartition[int32(pn)] = on
	}
	return b, nil
}

// window is where a replay starts and stops, as given.
type window struct {
	from, to             *time.Time
	fromOffset, toOffset *offsetBound
	follow               bool
}

// check refuses a window that is empty by construction: an easy mistake to
// make, and one that would otherwise look like an empty topic.
func (w window) check() error {
	if w.from != nil && w.to != nil && w.from.After(*w.to) {
		return usagef("--from %s is after --to %s (the window is from inclusive to exclusive; swap them)",
			w.from.UTC().Format(time.RFC3339Nano), w.to.UTC().Format(time.RFC3339Nano))
	}
	if w.fromOffset != nil && w.toOffset != nil {
		f, t := *w.fromOffset, *w.toOffset
		for p, fo := range f.perPartition {
			to, ok := t.perPartition[p]
			if !ok {
				to = t.all
			}
			if to >= 0 && fo > to {
				return usagef("--from-offset %d is after --to-offset %d in partition %d", fo, to, p)
			}
		}
		if f.all >= 0 && t.all >= 0 && f.all > t.all {
			return usagef("--from-offset %d is after --to-offset %d", f.all, t.all)
		}
	}
	if w.follow && (w.to != nil || w.toOffset != nil) {
		return usagef("--follow reads on past any end: drop --to/--to-offset or --follow")
	}
	return nil
}

// options are the reader options of the window over topics.
func (w window) options(topics []string) []streams.ReaderOption {
	var opts []streams.ReaderOption
	bound := func(t *time.Time, o *offsetBound, all func(streams.StartAt) streams.ReaderOption,
		one func(string, int32, streams.StartAt) streams.ReaderOption) {
		switch {
		case t != nil:
			opts = append(opts, all(streams.FromTime(*t)))
		case o != nil && o.all >= 0:
			opts = append(opts, all(streams.FromOffset(o.all)))
		case o != nil:
			for _, topic := range topics {
				for p, n := range o.perPartition {
					opts = append(opts, one(topic, p, streams.FromOffset(n)))
				}
			}
		}
	}
	bound(w.from, w.fromOffset, streams.WithFrom, streams.WithPartitionFrom)
	if w.follow {
		return opts
	}
	opts = append(opts, streams.WithStopAtEnd(), streams.WithPartitionOrder()) // --to and --to-offset override the end
	bound(w.to, w.toOffset, streams.WithTo, streams.WithPartitionTo)
	return opts
}

// partitions lists the partitions named by the offset flags, to check they
// exist once the reader knows the topics' partitions.
func (w window) partitions() []int32 {
	var out []int32
	for _, o := range []*offsetBound{w.fromOffset, w.toOffset} {
		if o != nil {
			for p := range o.perPartition {
				out = append(out, p)
			}
		}
	}
	return out
}
