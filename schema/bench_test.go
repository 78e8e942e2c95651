package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
)

// BenchEvent is a typical 10-field event.
type BenchEvent struct {
	ID    string
	Title string
	Count int64
	Price float64
	Done  bool
	At    time.Time
	Tags  []string
	Note  *string
	Level int32
	Data  []byte
}

func benchEvent() BenchEvent {
	return BenchEvent{
		ID: "0192f0c8-7d4e-7c6a-9b1e-3f2a1c0d9e8f", Title: "buy milk and bread", Count: 42, Price: 19.99,
		Done: true, At: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Tags: []string{"home", "urgent"},
		Note: ptr("before noon"), Level: 3, Data: []byte("0123456789abcdef"),
	}
}

func benchSerde(b *testing.B) (*schema.Serde, []byte) {
	r := newRegistry(b)
	s := newSerde(b, r, schema.WithAutoRegister(true))
	ev := benchEvent()
	data, _, err := s.Encode(context.Background(), "bench", &ev)
	if err != nil {
		b.Fatal(err)
	}
	var out BenchEvent
	if err := s.Decode(context.Background(), "bench", data, &out); err != nil { // warm
		b.Fatal(err)
	}
	return s, data
}

func BenchmarkEncode(b *testing.B) {
	s, _ := benchSerde(b)
	ev := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Encode(ctx, "bench", &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	s, data := benchSerde(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var out BenchEvent
		if err := s.Decode(ctx, "bench", data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// The goavro baselines are what a program using goavro directly does: build
// the native map from the struct by hand, encode, frame (and the reverse).
// The codec-only variants leave the hand-written conversion out.

func benchCodec(b *testing.B) *goavro.Codec {
	avsc, err := schema.SchemaOf(BenchEvent{})
	if err != nil {
		b.Fatal(err)
	}
	codec, err := goavro.NewCodec(avsc)
	if err != nil {
		b.Fatal(err)
	}
	return codec
}

func toNative(e *BenchEvent) map[string]any {
	tags := make([]any, len(e.Tags))
	for i, t := range e.Tags {
		tags[i] = t
	}
	var note any
	if e.Note != nil {
		note = goavro.Union("string", *e.Note)
	}
	return map[string]any{
		"id": e.ID, "title": e.Title, "count": e.Count, "price": e.Price, "done": e.Done,
		"at": e.At, "tags": tags, "note": note, "level": e.Level, "data": e.Data,
	}
}

func fromNative(x any, e *BenchEvent) {
	m := x.(map[string]any)
	e.ID, e.Title = m["id"].(string), m["title"].(string)
	e.Count, e.Price, e.Done = m["count"].(int64), m["price"].(float64), m["done"].(bool)
	e.At, e.Level = m["at"].(time.Time), m["level"].(int32)
	e.Data = append([]byte(nil), m["data"].([]byte)...)
	tags := m["tags"].([]any)
	e.Tags = make([]string, len(tags))
	for i, t := range tags {
		e.Tags[i] = t.(string)
	}
	e.Note = nil
	if u, ok := m["note"].(map[string]any); ok {
		s := u["string"].(string)
		e.Note = &s
	}
}

func BenchmarkGoavroEncode(b *testing.B) {
	codec := benchCodec(b)
	ev := benchEvent()
	var h sr.ConfluentHeader
	b.Run("with-conversion", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := h.AppendEncode(nil, 1, nil)
			if _, err := codec.BinaryFromNative(buf, toNative(&ev)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec-only", func(b *testing.B) {
		native := toNative(&ev)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := h.AppendEncode(nil, 1, nil)
			if _, err := codec.BinaryFromNative(buf, native); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGoavroDecode(b *testing.B) {
	codec := benchCodec(b)
	ev := benchEvent()
	data, err := codec.BinaryFromNative(nil, toNative(&ev))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("with-conversion", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			native, _, err := codec.NativeFromBinary(data)
			if err != nil {
				b.Fatal(err)
			}
			var out BenchEvent
			fromNative(native, &out)
		}
	})
	b.Run("codec-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := codec.NativeFromBinary(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRegistryLookupWarm(b *testing.B) {
	s, data := benchSerde(b)
	id := int(data[1])<<24 | int(data[2])<<16 | int(data[3])<<8 | int(data[4])
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.LookupWriter(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
