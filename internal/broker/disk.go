package broker

import (
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMinFreeBytes is the free space under which a persistent broker
// refuses new records (Config.MinFreeBytes).
const DefaultMinFreeBytes = 64 << 20

// diskInterval is how often the watchdog looks at the free space.
const diskInterval = 100 * time.Millisecond

// diskGuard refuses produce requests with KAFKA_STORAGE_ERROR while the
// data dir's file system has less than min bytes free, and lets them in
// again once it has twice that. Refusing early matters beyond the clear
// error: kfake answers a write the disk refuses with UNKNOWN_SERVER_ERROR,
// and drops a transaction marker it cannot write, which leaves that
// transaction undecidable for every reader of the log. The space kept
// free is what transaction markers and group offsets still need.
type diskGuard struct {
	c    *kfake.Cluster
	dir  string
	min  uint64
	log  io.Writer
	stop chan struct{}
	done sync.WaitGroup

	refusing *kfake.FaultHandle // owned by the watchdog goroutine
}

func startDiskGuard(c *kfake.Cluster, dir string, min int64, log io.Writer) *diskGuard {
	if log == nil {
		log = io.Discard
	}
	g := &diskGuard{c: c, dir: dir, min: uint64(min), log: log, stop: make(chan struct{})}
	g.done.Go(g.watch)
	return g
}

func (g *diskGuard) watch() {
	t := time.NewTicker(diskInterval)
	defer t.Stop()
	for {
		g.check()
		select {
		case <-g.stop:
			if g.refusing != nil {
				g.refusing.Remove()
			}
			return
		case <-t.C:
		}
	}
}

func (g *diskGuard) check() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return // the dir is there while the broker runs; a failed look changes nothing
	}
	free := st.Bavail * uint64(st.Bsize)
	switch {
	case g.refusing == nil && free < g.min:
		g.refusing = g.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.KafkaStorageError, Count: -1})
		fmt.Fprintf(g.log, "recq dev: the disk of %s has %s free, under %s: refusing new records with KAFKA_STORAGE_ERROR until space is freed\n",
			g.dir, mib(free), mib(g.min))
	case g.refusing != nil && free >= 2*g.min:
		g.refusing.Remove()
		g.refusing = nil
		fmt.Fprintf(g.log, "recq dev: the disk of %s has %s free again: accepting records\n", g.dir, mib(free))
	}
}

func mib(n uint64) string { return fmt.Sprintf("%d MiB", n>>20) }

func (g *diskGuard) close() {
	close(g.stop)
	g.done.Wait()
}
