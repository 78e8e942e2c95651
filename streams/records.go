package streams

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a record read and decoded: its payload, its envelope (type,
// ids, aggregate) and where and when it was written.
type Record[T any] struct {
	Envelope
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     T
	Raw       *kgo.Record // as read: the value's bytes, every header
}

// Decoder turns a record's value into a T. The schema package gives one for
// payloads without Go types (schema.Serde.GenericDecoder); Into and ByType
// decode into Go types through a Codec.
type Decoder[T any] func(ctx context.Context, r *kgo.Record) (T, error)

// DecodeError is what Records yields for a record it could not decode (its
// envelope or its value). Reading goes on after it.
type DecodeError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("streams: decode %s/%d/%d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Records reads rd to its end (or, for a reader without one, until ctx
// ends) and yields each record decoded by decode, in the order Poll returns
// them. Only one poll's records are held at a time, so a range of any size
// is read in bounded memory.
//
// A record that does not decode is yielded with its position, envelope and
// Raw set, and a *DecodeError; the next record follows. Any other error
// (a fetch failure, ctx's end) is yielded last and ends the sequence.
// Nothing is committed: a group reader's caller commits with rd.Commit.
func Records[T any](ctx context.Context, rd *Reader, decode Decoder[T]) iter.Seq2[Record[T], error] {
	return func(yield func(Record[T], error) bool) {
		for {
			recs, err := rd.Poll(ctx)
			for _, r := range recs {
				if !yield(decoded(ctx, r, decode)) {
					return
				}
			}
			switch {
			case errors.Is(err, ErrEndReached):
				return
			case err != nil:
				yield(Record[T]{}, err)
				return
			}
		}
	}
}

func decoded[T any](ctx context.Context, r *kgo.Record, decode Decoder[T]) (Record[T], error) {
	out := Record[T]{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Raw: r}
	env, err := ReadEnvelope(r)
	if err == nil {
		out.Envelope = env
		out.Value, err = decode(ctx, r)
	}
	if err != nil {
		return out, &DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
	}
	return out, nil
}

// Into decodes every value into a T (a struct) with codec: for a topic
// holding one payload type.
func Into[T any](codec Codec) Decoder[T] {
	return func(ctx context.Context, r *kgo.Record) (T, error) {
		var v T
		err := codec.Decode(ctx, r.Topic, r.Value, &v)
		return v, err
	}
}

// ErrUnknownType is returned (wrapped, in a DecodeError) by a ByType
// decoder for a record whose recq-type names none of its types.
var ErrUnknownType = errors.New("no Go type registered for the record's type")

// ByType decodes each value into the Go type its recq-type header names,
// among samples (structs or pointers to them, named by codec.TypeName): the
// Value is a pointer to a new struct of that type.
func ByType(codec TypedCodec, samples ...any) (Decoder[any], error) {
	types := make(map[string]reflect.Type, len(samples))
	for _, v := range samples {
		t := reflect.TypeOf(v)
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("streams: ByType wants structs or pointers to them, got %T", v)
		}
		name, err := codec.TypeName(v)
		if err != nil {
			return nil, fmt.Errorf("streams: ByType: the name of %v: %w", t, err)
		}
		types[name] = t
	}
	return func(ctx context.Context, r *kgo.Record) (any, error) {
		name, _ := Header(r, HeaderType)
		t, ok := types[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q (pass a sample of it to streams.ByType)", ErrUnknownType, name)
		}
		v := reflect.New(t).Interface()
		if err := codec.Decode(ctx, r.Topic, r.Value, v); err != nil {
			return nil, err
		}
		return v, nil
	}, nil
}
