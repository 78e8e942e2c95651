package schema_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/schema"
)

// Versions of one event, todo.Item, as its Go type evolves.

type ItemV1 struct {
	ID     string
	Title  string
	Count  int32
	Ratio  float32
	Legacy string
}

func (ItemV1) AvroName() string { return "todo.Item" }

type ItemV2 struct {
	ID       string
	Title    string
	Count    int64     // int → long
	Ratio    float64   // float → double
	Priority int       `avro:"priority,default=3"`
	Owner    string    `avro:"owner,default=nobody"`
	Tags     []string  `avro:"tags,default=[\"new\"]"`
	Due      time.Time `avro:"due,default=2024-01-01T00:00:00Z"`
	Note     *string   // optional: default null
	// Legacy was removed.
}

func (ItemV2) AvroName() string { return "todo.Item" }

type ItemNoDefault struct {
	ID       string
	Title    string
	Count    int32
	Ratio    float32
	Legacy   string
	Required string
}

func (ItemNoDefault) AvroName() string { return "todo.Item" }

type ItemSlim struct {
	ID    string
	Title string
}

func (ItemSlim) AvroName() string { return "todo.Item" }

// write encodes v with an auto-registering serde and returns the bytes.
func write(t *testing.T, r *testRegistry, topic string, v any) []byte {
	t.Helper()
	data, _, err := newSerde(t, r, schema.WithAutoRegister(true)).Encode(context.Background(), topic, v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEvolutionOldWriterNewReader(t *testing.T) {
	r := newRegistry(t)
	data := write(t, r, "items", ItemV1{ID: "1", Title: "buy milk", Count: 7, Ratio: 0.5, Legacy: "gone"})
	var got ItemV2
	if err := newSerde(t, r).Decode(context.Background(), "items", data, &got); err != nil {
		t.Fatal(err)
	}
	want := ItemV2{
		ID: "1", Title: "buy milk",
		Count: 7, Ratio: 0.5, // promoted
		Priority: 3, Owner: "nobody", Tags: []string{"new"}, // defaults of added fields
		Due:  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Note: nil, // added optional field
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestEvolutionRemovedFieldIgnored(t *testing.T) {
	r := newRegistry(t)
	data := write(t, r, "items", ItemV2{ID: "1", Title: "t", Count: 1 << 40, Owner: "ann", Tags: []string{"x"}, Note: ptr("n")})
	var got ItemSlim
	if err := newSerde(t, r).Decode(context.Background(), "items", data, &got); err != nil {
		t.Fatal(err)
	}
	if got != (ItemSlim{ID: "1", Title: "t"}) {
		t.Errorf("got %+v", got)
	}
}

type PromoW struct {
	I  int32
	I2 int32
	I3 int32
	L  int64
	L2 int64
	F  float32
	S  string
	B  []byte
}

func (PromoW) AvroName() string { return "todo.Promo" }

type PromoR struct {
	I  int64
	I2 float32
	I3 float64
	L  float32
	L2 float64
	F  float64
	S  []byte
	B  string
}

func (PromoR) AvroName() string { return "todo.Promo" }

func TestEvolutionPromotions(t *testing.T) {
	r := newRegistry(t)
	data := write(t, r, "promo", PromoW{I: -5, I2: 3, I3: 1 << 30, L: 1 << 40, L2: -9, F: 2.5, S: "text", B: []byte("bytes")})
	var got PromoR
	if err := newSerde(t, r).Decode(context.Background(), "promo", data, &got); err != nil {
		t.Fatal(err)
	}
	want := PromoR{I: -5, I2: 3, I3: 1 << 30, L: 1 << 40, L2: -9, F: 2.5, S: []byte("text"), B: "bytes"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

type LevelW int

func (LevelW) AvroSymbols() []string { return []string{"LOW", "MID", "HIGH"} }
func (LevelW) AvroName() string      { return "todo.Level" }

type TaskW struct {
	Level    LevelW
	Estimate *int32     // ["null","int"]
	Owner    string     // plain string
	Note     *string    // ["null","string"]
	At       time.Time  `avro:",micros"`
	Prev     *time.Time `avro:",micros"`
}

func (TaskW) AvroName() string { return "todo.Task" }

type LevelR string

type TaskR struct {
	Level    LevelR
	Estimate *int64     // ["null","long"]
	Owner    *string    // ["null","string"]
	Note     string     // "string"
	At       time.Time  // millis
	Prev     *time.Time // millis
}

const taskR = `{"type":"record","name":"Task","namespace":"todo","fields":[
  {"name":"level","type":{"type":"enum","name":"Level","symbols":["LOW","HIGH"],"default":"LOW"}},
  {"name":"estimate","type":["null","long"],"default":null},
  {"name":"owner","type":["null","string"],"default":null},
  {"name":"note","type":"string"},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"prev","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null}]}`

func TestEvolutionEnumsUnionsAndTimestamps(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	reader := newSerde(t, r, schema.WithSchema(TaskR{}, taskR))
	at := time.Date(2024, 2, 3, 4, 5, 6, 789_123_000, time.UTC)
	cases := []struct {
		name string
		in   TaskW
		want TaskR
		err  string
	}{
		{
			name: "symbol known to the reader, values in union branches",
			in:   TaskW{Level: 2, Estimate: ptr(int32(5)), Owner: "ann", Note: ptr("n"), At: at, Prev: ptr(at)},
			want: TaskR{Level: "HIGH", Estimate: ptr(int64(5)), Owner: ptr("ann"), Note: "n",
				At: at.Truncate(time.Millisecond), Prev: ptr(at.Truncate(time.Millisecond))},
		},
		{
			name: "symbol unknown to the reader takes its default, nulls",
			in:   TaskW{Level: 1, Note: ptr("n"), At: at},
			want: TaskR{Level: "LOW", Owner: ptr(""), Note: "n", At: at.Truncate(time.Millisecond)},
		},
		{
			name: "null written where the reader wants a value",
			in:   TaskW{Note: nil},
			err:  `field "note": invalid value: the writer wrote null`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := write(t, r, "tasks", c.in)
			var got TaskR
			err := reader.Decode(ctx, "tasks", data, &got)
			if c.err != "" {
				if !errors.Is(err, schema.ErrInvalidValue) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

type Headline struct {
	ID       string
	Headline string
}

func TestEvolutionFieldAlias(t *testing.T) {
	r := newRegistry(t)
	data := write(t, r, "items", ItemV1{ID: "1", Title: "renamed"})
	s := newSerde(t, r, schema.WithSchema(Headline{}, `{"type":"record","name":"todo.Item","fields":[
		{"name":"id","type":"string"},
		{"name":"headline","type":"string","aliases":["title"]}]}`))
	var got Headline
	if err := s.Decode(context.Background(), "items", data, &got); err != nil || got != (Headline{"1", "renamed"}) {
		t.Errorf("got %+v, %v", got, err)
	}
}

type CountAsString struct {
	ID    string
	Title string
	Count string
}

func (CountAsString) AvroName() string { return "todo.Item" }

type Ticket struct{ ID string }

func TestEvolutionIncompatible(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	cases := []struct {
		name   string
		writer any
		into   any
		msg    string
	}{
		{"type change", CountAsString{ID: "1", Count: "x"}, &ItemV2{}, `field "count": incompatible schema: writer string cannot be read as long`},
		{"narrowing", ItemV2{ID: "1"}, &ItemV1{}, `field "count": incompatible schema: writer long cannot be read as int`},
		{"added field without default", ItemSlim{ID: "1"}, &ItemNoDefault{}, `field "count": incompatible schema: the writer's todo.Item lacks it`},
		{"another record", Ticket{ID: "1"}, &ItemSlim{}, "writer schema_test.Ticket cannot be read as todo.Item"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := write(t, r, "incompat"+string(rune('a'+i)), c.writer)
			err := newSerde(t, r).Decode(ctx, "incompat", data, c.into)
			if !errors.Is(err, schema.ErrIncompatible) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("want ErrIncompatible with %q, got %v", c.msg, err)
			}
		})
	}
}

type BagW struct {
	Counts []int32
	Ratios map[string]float32
	Maybe  *int32
}

func (BagW) AvroName() string { return "todo.Bag" }

type BagR struct {
	Counts []int64
	Ratios map[string]float64
	Maybe  *int64
}

func TestEvolutionInsideContainers(t *testing.T) {
	r := newRegistry(t)
	// The reader's union has a branch (string) the Go type cannot hold: it
	// binds to the long branch, which the writer's int promotes to.
	s := newSerde(t, r, schema.WithSchema(BagR{}, `{"type":"record","name":"todo.Bag","fields":[
		{"name":"counts","type":{"type":"array","items":"long"}},
		{"name":"ratios","type":{"type":"map","values":"double"}},
		{"name":"maybe","type":["null","string","long"],"default":null}]}`))
	for _, in := range []BagW{
		{Counts: []int32{1, -2}, Ratios: map[string]float32{"a": 0.5, "b": 2}, Maybe: ptr(int32(7))},
		{},
	} {
		var got BagR
		if err := s.Decode(context.Background(), "bags", write(t, r, "bags", in), &got); err != nil {
			t.Fatal(err)
		}
		want := BagR{Ratios: map[string]float64{}}
		for _, c := range in.Counts {
			want.Counts = append(want.Counts, int64(c))
		}
		for k, v := range in.Ratios {
			want.Ratios[k] = float64(v)
		}
		if in.Maybe != nil {
			want.Maybe = ptr(int64(*in.Maybe))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}
