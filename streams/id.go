package streams

import (
	"encoding/hex"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// NewID returns a new message id: a UUIDv7 (RFC 9562), so ids sort by
// creation time.
func NewID() string { return string(appendID(nil)) }

// idLen is the length of a UUID's text form.
const idLen = 36

// epoch pairs a wall-clock reading with the monotonic clock, so an id's
// millisecond needs only the cheaper monotonic read (time.Since) instead of
// a full time.Now. Ids of a long-running process drift with the monotonic
// clock rather than jump with wall-clock corrections, which ordering wants.
var epoch = time.Now()

// lastStamp holds the last (unix milliseconds << 12 | sequence) handed out, so
// ids from one process strictly increase even within a millisecond (RFC 9562,
// method 1: a 12-bit counter in rand_a).
var lastStamp atomic.Uint64

// appendID appends a UUIDv7 in its 36-byte text form to b, so stamping can
// build every header value of a record in one buffer. The 62 random bits
// come from the runtime's ChaCha8 generator, which is seeded from the
// system's random source: unique across processes without a lock or a
// syscall per id.
func appendID(b []byte) []byte {
	now := uint64(epoch.UnixMilli()+time.Since(epoch).Milliseconds()) << 12
	var stamp uint64
	for {
		last := lastStamp.Load()
		stamp = max(now, last+1)
		if lastStamp.CompareAndSwap(last, stamp) {
			break
		}
	}
	var u [16]byte
	ms, seq := stamp>>12, stamp&0xfff
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6], u[7] = 0x70|byte(seq>>8), byte(seq) // version 7
	r := rand.Uint64()
	u[8] = 0x80 | byte(r>>56)&0x3f // variant 10
	u[9], u[10], u[11], u[12], u[13], u[14], u[15] = byte(r>>48), byte(r>>40), byte(r>>32), byte(r>>24), byte(r>>16), byte(r>>8), byte(r)

	n := len(b)
	b = append(b, make([]byte, idLen)...)
	id := b[n:]
	hex.Encode(id[0:8], u[0:4])
	id[8] = '-'
	hex.Encode(id[9:13], u[4:6])
	id[13] = '-'
	hex.Encode(id[14:18], u[6:8])
	id[18] = '-'
	hex.Encode(id[19:23], u[8:10])
	id[23] = '-'
	hex.Encode(id[24:], u[10:])
	return b
}
