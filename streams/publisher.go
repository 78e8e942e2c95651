package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoCodec is returned by PublishValue on a Publisher built without a Codec.
var ErrNoCodec = errors.New("streams: publisher has no codec (use WithCodec)")

// PublisherOption configures a Publisher.
type PublisherOption func(*PublisherConfig)

// PublisherConfig is what the options set; its zero value is valid.
type PublisherConfig struct {
	Codec         Codec
	ClientOptions []kgo.Opt
}

// WithCodec sets the codec PublishValue encodes payloads with.
func WithCodec(codec Codec) PublisherOption {
	return func(c *PublisherConfig) { c.Codec = codec }
}

// Compressions are the names ParseCompression accepts, in the order a CLI
// lists them.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// ParseCompression reads a compression name (see Compressions).
func ParseCompression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("streams: unknown compression %q (want one of %v)", name, Compressions)
}

// WithCompression sets how the publisher compresses its batches (default
// snappy, franz-go's: fast, and read by the Java, librdkafka and franz-go
// clients; plain kafkajs reads only gzip and none without a codec
// package, so publish with gzip or none for it).
func WithCompression(codec kgo.CompressionCodec) PublisherOption {
	return WithClientOptions(kgo.ProducerBatchCompression(codec))
}

// WithClientOptions adds franz-go options to the publisher's own client.
func WithClientOptions(opts ...kgo.Opt) PublisherOption {
	return func(c *PublisherConfig) { c.ClientOptions = append(c.ClientOptions, opts...) }
}

// Publisher produces recq records. Idempotence is on (franz-go's default,
// never disabled here), so retries never duplicate or reorder records of a
// partition.
type Publisher struct {
	cl    *kgo.Client
	codec Codec
}

// NewPublisher returns a Publisher on a client of its own for brokers. It
// does not linger (franz-go's default is 10 ms, which every command's
// round trip would pay): franz-go still batches whatever is buffered while
// a request is in flight. WithClientOptions(kgo.ProducerLinger(d)) trades
// latency for larger batches. It does not contact the brokers.
func NewPublisher(brokers []string, opts ...PublisherOption) (*Publisher, error) {
	var cfg PublisherConfig
	for _, o := range opts {
		o(&cfg)
	}
	cl, err := NewClient(brokers, append([]kgo.Opt{kgo.ProducerLinger(0)}, cfg.ClientOptions...)...)
	if err != nil {
		return nil, err
	}
	return &Publisher{cl: cl, codec: cfg.Codec}, nil
}

// Client returns the underlying franz-go client.
func (p *Publisher) Client() *kgo.Client { return p.cl }

// RecordError is one record that could not be published.
type RecordError struct {
	Record *kgo.Record
	Err    error
}

// PublishError reports the records of one Publish call that failed; the
// others were published.
type PublishError struct {
	Failed []RecordError
	Total  int
}

func (e *PublishError) Error() string {
	f := e.Failed[0]
	return fmt.Sprintf("streams: %d of %d records not published; first: topic %q key %q: %v",
		len(e.Failed), e.Total, f.Record.Topic, f.Record.Key, f.Err)
}

// Unwrap exposes every record's error to errors.Is and errors.As.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// Publish stamps and produces recs and waits until each is acknowledged or
// failed. It returns nil when all were acknowledged, or a *PublishError
// listing the failed ones. Records are produced in order, so records with
// the same key keep their order.
func (p *Publisher) Publish(ctx context.Context, recs ...*kgo.Record) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []RecordError
	)
	wg.Add(len(recs))
	for _, r := range recs {
		p.PublishAsync(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, RecordError{Record: r, Err: err})
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		return &PublishError{Failed: failed, Total: len(recs)}
	}
	return nil
}

// PublishAsync stamps r and buffers it for producing; done (which may be nil)
// is called once with the outcome, from a client goroutine, so it must not
// block. Cancelling ctx before the record is sent fails it with ctx's error.
func (p *Publisher) PublishAsync(ctx context.Context, r *kgo.Record, done func(*kgo.Record, error)) {
	Stamp(ctx, r)
	p.cl.Produce(ctx, r, done)
}

// PublishValue encodes v with the publisher's codec and publishes it
// synchronously to topic with key, setting the recq-type header.
func (p *Publisher) PublishValue(ctx context.Context, topic, key string, v any) error {
	if p.codec == nil {
		return ErrNoCodec
	}
	val, typ, err := p.codec.Encode(ctx, topic, v)
	if err != nil {
		return fmt.Errorf("streams: encode %T for topic %q: %w", v, topic, err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: val}
	SetHeader(r, HeaderType, typ)
	return p.Publish(ctx, r)
}

// Flush waits until every buffered record is acknowledged or failed.
func (p *Publisher) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }

// Close flushes what is buffered (bounded by ctx) and closes the client.
func (p *Publisher) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	p.cl.Close()
	return err
}
