package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/recq/recq/streams"
)

// progress reports a replay's progress on stderr: a line rewritten in
// place on a terminal, a plain line every interval otherwise (a log, CI).
type progress struct {
	w       io.Writer
	tty     bool
	every   time.Duration
	begun   time.Time
	next    time.Time
	n       int // records since the clock was last looked at
	ranges  []streams.PartitionRange
	at      map[topicPartition]int // "topic", "partition" → index in ranges
	reached []int64                // per range: the offset after the last record seen
	total   int64                  // offsets in the window; 0 when followed
	drawn   bool
}

func newProgress(w io.Writer, every time.Duration, ranges []streams.PartitionRange) *progress {
	p := &progress{w: w, every: every, begun: time.Now(), ranges: ranges, at: map[topicPartition]int{}, reached: make([]int64, len(ranges))}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.every = true, min(every, 500*time.Millisecond)
		}
	}
	p.next = p.begun.Add(p.every)
	for i, r := range ranges {
		p.at[topicPartition{r.Topic, r.Partition}] = i
		p.reached[i] = r.From
		if r.To >= 0 {
			p.total += r.To - r.From
		}
	}
	return p
}

// saw notes a record read; every 256 records it looks at the clock.
func (p *progress) saw(topic string, partition int32, offset int64, st replayStats) {
	if i, ok := p.at[topicPartition{topic, partition}]; ok {
		p.reached[i] = max(p.reached[i], offset+1)
	}
	if p.n++; p.n < 256 {
		return
	}
	p.n = 0
	if now := time.Now(); now.After(p.next) {
		p.next = now.Add(p.every)
		p.report(now, st)
	}
}

func (p *progress) report(now time.Time, st replayStats) {
	took := now.Sub(p.begun)
	rate := float64(st.read) / max(took.Seconds(), 1e-9)
	line := fmt.Sprintf("recq: replay: %d read, %d written, %d skipped, %.0f records/s", st.read, st.written, st.skipped, rate)
	if p.total > 0 {
		var covered int64
		for i, r := range p.ranges {
			covered += p.reached[i] - r.From
		}
		frac := float64(covered) / float64(p.total)
		line += fmt.Sprintf(", %.0f%% of the window", 100*frac)
		if frac > 0 {
			line += fmt.Sprintf(", about %v left", time.Duration(float64(took)*(1-frac)/frac).Round(time.Second))
		}
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// clear removes the terminal's progress line before the summary.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
