package schema_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

var _ streams.Codec = (*schema.Serde)(nil)

type Status int

func (Status) AvroSymbols() []string { return []string{"OPEN", "DONE", "ARCHIVED"} }

type Color string

func (Color) AvroSymbols() []string { return []string{"RED", "GREEN"} }

type Address struct {
	Street string
	Zip    *int32
}

type Base struct {
	ID string
	At time.Time
}

type Digest [4]byte

// Everything uses every supported kind.
type Everything struct {
	Base
	Flag    bool
	Small   int8
	Medium  int16
	I32     int32
	U8      uint8
	U16     uint16
	N       int
	I64     int64
	U       uint
	U32     uint32
	U64     uint64
	F32     float32
	F64     float64
	Name    string
	Data    []byte
	Hash    [4]byte
	Sum     Digest
	Micro   time.Time `avro:",micros"`
	Took    time.Duration
	Note    *string
	Count   *int64
	When    *time.Time
	Tags    []string
	Grid    [2]int32
	Labels  map[string]string
	Address Address
	Prev    *Address
	Inline  struct{ X, Y int }
	Status  Status
	Color   Color
	Nested  []map[string]*Address
	Renamed string `avro:"other_name"`
	Skipped string `avro:"-"`
	hidden  string
	Opt     *string `avro:"opt,default=fallback"`
	Title   string  `avro:"title,default=untitled, yes"`
}

func everything() Everything {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	return Everything{
		Base:    Base{ID: "item-1", At: at},
		Flag:    true,
		Small:   -8,
		Medium:  -1600,
		I32:     -2_000_000_000,
		U8:      255,
		U16:     65535,
		N:       -1 << 40,
		I64:     1 << 62,
		U:       1 << 40,
		U32:     4_000_000_000,
		U64:     1<<63 - 1,
		F32:     1.5,
		F64:     -2.25e100,
		Name:    "héllo, 世界",
		Data:    []byte{0, 1, 2, 0xff},
		Hash:    [4]byte{9, 8, 7, 6},
		Sum:     Digest{1, 2, 3, 4},
		Micro:   time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		Took:    90 * time.Second,
		Note:    ptr("a note"),
		Count:   nil,
		When:    ptr(at.Add(time.Hour)),
		Tags:    []string{"a", "b"},
		Grid:    [2]int32{3, 4},
		Labels:  map[string]string{"k": "v", "": "empty"},
		Address: Address{Street: "Main", Zip: ptr(int32(12345))},
		Prev:    &Address{Street: "Old"},
		Inline:  struct{ X, Y int }{1, 2},
		Status:  2,
		Color:   "GREEN",
		Nested:  []map[string]*Address{{"home": {Street: "Home"}, "none": nil}},
		Renamed: "renamed",
		Opt:     ptr("set"),
		Title:   "t",
	}
}

func TestRoundTripAllKinds(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	s := newSerde(t, r, schema.WithAutoRegister(true))

	in := everything()
	in.Skipped, in.hidden = "not encoded", "not encoded"
	data, typeName, err := s.Encode(ctx, "items", &in)
	if err != nil {
		t.Fatal(err)
	}
	if typeName != "schema_test.Everything" {
		t.Errorf("type name %q", typeName)
	}
	if data[0] != 0 || len(data) < 6 {
		t.Fatalf("not framed: % x", data)
	}
	var out Everything
	if err := s.Decode(ctx, "items", data, &out); err != nil {
		t.Fatal(err)
	}
	want := everything()
	if !reflect.DeepEqual(out, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, want)
	}

	// By value encodes as by pointer, and map keys are sorted: the same
	// value always gives the same bytes.
	for range 5 {
		again, _, err := s.Encode(ctx, "items", in)
		if err != nil || string(again) != string(data) {
			t.Fatalf("by value: %v, same bytes=%v", err, string(again) == string(data))
		}
	}

	// The registered subject follows TopicRecordNameStrategy.
	if _, err := r.client.SchemaByVersion(ctx, schema.SubjectFor("items", typeName), -1); err != nil {
		t.Errorf("subject items-%s: %v", typeName, err)
	}
}

// The serde writes Avro binary itself; goavro must read it and write the
// very same bytes back.
func TestEncodingMatchesGoavro(t *testing.T) {
	avsc, err := schema.SchemaOf(Everything{})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(avsc)
	if err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	full := everything()
	// goavro writes map entries in Go's random order: one entry per map.
	full.Labels = map[string]string{"k": "v"}
	full.Nested = []map[string]*Address{{"home": {Street: "Home", Zip: ptr(int32(-1))}}, {"none": nil}, {}}
	for name, v := range map[string]Everything{"full": full, "zero": {Color: "RED"}} {
		data, _, err := s.Encode(context.Background(), "items", v)
		if err != nil {
			t.Fatal(err)
		}
		native, rest, err := codec.NativeFromBinary(data[5:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: goavro cannot read it: %v, %d bytes left", name, err, len(rest))
		}
		again, err := codec.BinaryFromNative(nil, native)
		if err != nil || string(again) != string(data[5:]) {
			t.Errorf("%s: goavro writes\n% x\nthe serde wrote\n% x", name, again, data[5:])
		}
	}
}

func TestRoundTripZeroValue(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	// Color is a string enum whose zero value is no symbol.
	data, _, err := s.Encode(ctx, "items", Everything{Color: "RED"})
	if err != nil {
		t.Fatal(err)
	}
	var out Everything
	if err := s.Decode(ctx, "items", data, &out); err != nil {
		t.Fatal(err)
	}
	// Nil maps come back empty and writable, as with encoding/json; the rest
	// is the zero value again.
	want := Everything{Color: "RED", Labels: map[string]string{}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got %+v", out)
	}
}

type Node struct {
	Value int
	Next  *Node
}

func TestRoundTripRecursive(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	in := Node{1, &Node{2, &Node{3, nil}}}
	data, _, err := s.Encode(ctx, "nodes", in)
	if err != nil {
		t.Fatal(err)
	}
	var out Node
	if err := s.Decode(ctx, "nodes", data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("got %+v", out)
	}
}

type Ordered struct {
	OrderID string
	Total   int64
}

func TestStrictModeNeedsRegisteredSchema(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	s := newSerde(t, r) // strict: the zero config

	_, _, err := s.Encode(ctx, "orders", Ordered{OrderID: "o1"})
	if !errors.Is(err, schema.ErrSchemaNotRegistered) {
		t.Fatalf("want ErrSchemaNotRegistered, got %v", err)
	}
	for _, part := range []string{`subject "orders-schema_test.Ordered"`, "recq schema register orders-schema_test.Ordered --file", "WithAutoRegister(true)"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
	if n := r.requests("POST /subjects/orders-schema_test.Ordered/versions"); n != 0 {
		t.Errorf("strict mode registered: %d requests", n)
	}

	// Once an operator registered it, strict mode finds it (the failure was
	// not cached).
	avsc, err := schema.SchemaOf(Ordered{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.client.RegisterSchema(ctx, "orders-schema_test.Ordered", sr.Schema{Schema: avsc}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := s.Encode(ctx, "orders", Ordered{OrderID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := int(data[1])<<24 | int(data[2])<<16 | int(data[3])<<8 | int(data[4]); got != id {
		t.Errorf("framed id %d, registered %d", got, id)
	}
}

// A hand-written .avsc registered by an operator is found in strict mode:
// the serde registers and looks up the text as given.
func TestStrictModeWithSuppliedSchema(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	const avsc = `{
	  "type": "record", "name": "Order", "namespace": "shop",
	  "doc": "an order, written by hand",
	  "fields": [
	    {"name": "order_id", "type": "string"},
	    {"name": "total", "type": "long"},
	    {"name": "currency", "type": "string", "default": "EUR"}
	  ]
	}`
	if _, err := r.client.RegisterSchema(ctx, "orders-shop.Order", sr.Schema{Schema: avsc}, -1, -1); err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, r, schema.WithSchema(Ordered{}, avsc))
	data, typeName, err := s.Encode(ctx, "orders", Ordered{OrderID: "o1", Total: 5})
	if err != nil {
		t.Fatal(err)
	}
	if typeName != "shop.Order" {
		t.Errorf("type name %q", typeName)
	}
	// currency has no Go field: goavro wrote its default.
	j, err := s.DecodeJSON(ctx, data, false)
	if err != nil || string(j) != `{"order_id":"o1","total":5,"currency":"EUR"}` {
		t.Errorf("DecodeJSON = %s, %v", j, err)
	}
	var out Ordered
	if err := s.Decode(ctx, "orders", data, &out); err != nil || out != (Ordered{"o1", 5}) {
		t.Errorf("Decode = %+v, %v", out, err)
	}
}

func TestIncompatibleRegistration(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	if _, _, err := s.Encode(ctx, "todo", ItemV1{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	// Same record name, a new field without a default: BACKWARD refuses it.
	_, _, err := s.Encode(ctx, "todo", ItemNoDefault{ID: "1"})
	if !errors.Is(err, schema.ErrIncompatible) || !strings.Contains(err.Error(), `"todo-todo.Item"`) {
		t.Errorf("want ErrIncompatible naming the subject, got %v", err)
	}
}

func TestUnknownSchemaID(t *testing.T) {
	s := newSerde(t, newRegistry(t))
	data := []byte{0, 0, 0, 0x30, 0x39, 2, 'x'} // id 12345
	var out Ordered
	err := s.Decode(context.Background(), "orders", data, &out)
	if !errors.Is(err, schema.ErrUnknownSchemaID) || !strings.Contains(err.Error(), "12345") {
		t.Errorf("Decode: want ErrUnknownSchemaID naming 12345, got %v", err)
	}
	if _, err := s.DecodeJSON(context.Background(), data, false); !errors.Is(err, schema.ErrUnknownSchemaID) {
		t.Errorf("DecodeJSON: want ErrUnknownSchemaID, got %v", err)
	}
}

func TestNotFramed(t *testing.T) {
	r := newRegistry(t)
	s := newSerde(t, r)
	for _, data := range [][]byte{nil, {0, 0, 0}, []byte(`{"json":true}`), {1, 0, 0, 0, 1, 0}} {
		var out Ordered
		if err := s.Decode(context.Background(), "orders", data, &out); !errors.Is(err, schema.ErrNotFramed) {
			t.Errorf("Decode(% x): want ErrNotFramed, got %v", data, err)
		}
		if _, err := s.DecodeJSON(context.Background(), data, true); !errors.Is(err, schema.ErrNotFramed) {
			t.Errorf("DecodeJSON(% x): want ErrNotFramed, got %v", data, err)
		}
	}
	if n := r.requests(""); n != 0 {
		t.Errorf("%d registry requests for unframed data", n)
	}
}

func TestDecodeMalformed(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	data, _, err := s.Encode(ctx, "orders", Ordered{OrderID: "a long order id", Total: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out Ordered
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-3],
		"trailing":  append(data[:len(data):len(data)], 0),
	} {
		if err := s.Decode(ctx, "orders", bad, &out); !errors.Is(err, schema.ErrMalformed) {
			t.Errorf("%s: want ErrMalformed, got %v", name, err)
		}
	}
}

func TestEncodeDecodeArgs(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	for _, v := range []any{nil, 5, (*Ordered)(nil), []Ordered{}, time.Time{}} {
		if _, _, err := s.Encode(ctx, "t", v); !errors.Is(err, schema.ErrUnsupportedType) {
			t.Errorf("Encode(%T): want ErrUnsupportedType, got %v", v, err)
		}
	}
	data, _, err := s.Encode(ctx, "t", Ordered{})
	if err != nil {
		t.Fatal(err)
	}
	for _, into := range []any{nil, Ordered{}, (*Ordered)(nil), new(int)} {
		if err := s.Decode(ctx, "t", data, into); !errors.Is(err, schema.ErrUnsupportedType) {
			t.Errorf("Decode(%T): want ErrUnsupportedType, got %v", into, err)
		}
	}
	if _, err := schema.NewSerde(nil); err == nil {
		t.Error("NewSerde(nil) succeeded")
	}
}

// Strict is bound by WithSchema to a schema narrower than its Go types, so
// that validation has something to refuse.
type Strict struct {
	Title string
	Count int64
	Note  *string
	Size  uint64
	F     float64
}

const strictAvsc = `{"type":"record","name":"Strict","namespace":"todo","fields":[
  {"name":"title","type":"string"},
  {"name":"count","type":"int"},
  {"name":"note","type":"string"},
  {"name":"size","type":"long"},
  {"name":"f","type":"float"}]}`

type Labelled struct {
	Title   string
	Status  Status
	Color   Color
	Address Address
	Tags    []string
	Labels  map[string]string
	Nested  []map[string]*Address
}

func TestValidationNamesTheField(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	s := newSerde(t, r, schema.WithAutoRegister(true), schema.WithSchema(Strict{}, strictAvsc))
	okStrict := Strict{Title: "t", Note: ptr("n")}
	bad := "bad \xff utf-8"
	cases := []struct {
		name  string
		v     any
		field string
		msg   string
	}{
		{"int32 overflow", func() Strict { v := okStrict; v.Count = 1 << 40; return v }(), "count", "overflows Avro int"},
		{"nil for non-optional", func() Strict { v := okStrict; v.Note = nil; return v }(), "note", "not optional"},
		{"uint64 above long", func() Strict { v := okStrict; v.Size = 1 << 63; return v }(), "size", "overflows Avro long"},
		{"float overflow", func() Strict { v := okStrict; v.F = 1e300; return v }(), "f", "overflows Avro float"},
		{"invalid utf-8", func() Strict { v := okStrict; v.Title = bad; return v }(), "title", "UTF-8"},
		{"int enum out of range", Labelled{Status: 7, Color: "RED"}, "status", "not a symbol of enum schema_test.Status"},
		{"string enum unknown", Labelled{Color: "BLUE"}, "color", `"BLUE" is not a symbol`},
		{"nested record", Labelled{Color: "RED", Address: Address{Street: bad}}, "address.street", "UTF-8"},
		{"array element", Labelled{Color: "RED", Tags: []string{"ok", bad}}, "tags[1]", "UTF-8"},
		{"map value", Labelled{Color: "RED", Labels: map[string]string{"k": bad}}, `labels["k"]`, "UTF-8"},
		{"deep path", Labelled{Color: "RED", Nested: []map[string]*Address{nil, {"x": {Street: bad}}}}, `nested[1]["x"].street`, "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, _, err := s.Encode(ctx, "todo", c.v)
			if err == nil {
				t.Fatalf("encoded % x", data)
			}
			if data != nil {
				t.Errorf("returned bytes with the error: % x", data)
			}
			var fe *schema.FieldError
			if !errors.Is(err, schema.ErrInvalidValue) || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("want a FieldError for %q wrapping ErrInvalidValue, got %v", c.field, err)
			}
			want := fmt.Sprintf("schema: encode %s: field %q: ", map[bool]string{true: "todo.Strict", false: "schema_test.Labelled"}[reflect.TypeOf(c.v) == reflect.TypeOf(Strict{})], c.field)
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q: want prefix %q and %q", err, want, c.msg)
			}
		})
	}
	// Nothing was encoded, so nothing was registered either.
	if n := r.requests("POST"); n != 0 {
		t.Errorf("%d registrations for refused values", n)
	}
}

func TestWriterSchemaFetchedOnce(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	data, _, err := newSerde(t, r, schema.WithAutoRegister(true)).Encode(ctx, "orders", Ordered{OrderID: "o", Total: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, r) // a fresh serde: a consumer in another process
	before := r.requests("")
	const n = 50
	for i := range n {
		var out Ordered
		if err := s.Decode(ctx, "orders", data, &out); err != nil || out.Total != 1 {
			t.Fatalf("decode %d: %+v %v", i, out, err)
		}
		if _, err := s.DecodeJSON(ctx, data, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.requests("GET /schemas/ids/"); got != 1 {
		t.Errorf("%d decodes made %d schema fetches, want 1", 2*n, got)
	}
	if got := r.requests("") - before; got != 1 {
		t.Errorf("%d registry requests in all, want 1: %v", got, r.hits)
	}
}

func TestConcurrentDecode(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	writer := newSerde(t, r, schema.WithAutoRegister(true))
	in := everything()
	data, _, err := writer.Encode(ctx, "items", in)
	if err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, r, schema.WithAutoRegister(true))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 100 {
		wg.Go(func() {
			var out Everything
			if err := s.Decode(ctx, "items", data, &out); err != nil {
				errs <- err
				return
			}
			if !reflect.DeepEqual(out, everything()) {
				errs <- fmt.Errorf("decoded %+v", out)
			}
		})
		wg.Go(func() {
			if _, _, err := s.Encode(ctx, "items", in); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.requests("GET /schemas/ids/"); got != 1 {
		t.Errorf("100 concurrent decodes made %d schema fetches, want 1", got)
	}
	if got := r.requests("POST /subjects/items-schema_test.Everything/versions"); got != 2 {
		t.Errorf("%d registrations, want 2 (one per serde)", got)
	}
}

func TestWaitRespectsContext(t *testing.T) {
	r := newRegistry(t)
	s := newSerde(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out Ordered
	if err := s.Decode(ctx, "orders", []byte{0, 0, 0, 0, 1, 0}, &out); !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
}

func TestTypeName(t *testing.T) {
	s := newSerde(t, newRegistry(t), schema.WithSchema(&Ordered{}, `{"type":"record","name":"shop.Order","fields":[
		{"name":"order_id","type":"string"},{"name":"total","type":"long"}]}`))
	for v, want := range map[any]string{Ordered{}: "shop.Order", &Everything{}: "schema_test.Everything", Named{}: "acme.events.Renamed"} {
		if got, err := s.TypeName(v); err != nil || got != want {
			t.Errorf("TypeName(%T) = %q, %v; want %q", v, got, err, want)
		}
	}
}

// What a serde encoded it decodes without asking the registry for the
// schema: a runner reads its own events back during a registry outage.
func TestSerdeReadsWhatItWroteWithoutTheRegistry(t *testing.T) {
	r := newRegistry(t)
	// In this order: the strict serde looks up what the first registered.
	for _, c := range []struct {
		name string
		s    *schema.Serde
	}{
		{"auto-register", newSerde(t, r, schema.WithAutoRegister(true))},
		{"strict lookup", newSerde(t, r)},
	} {
		s := c.s
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			data, _, err := s.Encode(ctx, "own", Ordered{OrderID: "o-1", Total: 7})
			if err != nil {
				t.Fatal(err)
			}
			before := r.requests("GET /schemas/ids/")
			var out Ordered
			if err := s.Decode(ctx, "own", data, &out); err != nil || out.OrderID != "o-1" || out.Total != 7 {
				t.Fatalf("decode: %+v %v", out, err)
			}
			if n := r.requests("GET /schemas/ids/") - before; n != 0 {
				t.Fatalf("%d registry requests to decode what the serde wrote, want 0", n)
			}
		})
	}
}

// A registry that does not answer is ErrRegistryUnavailable (retry later),
// not an answer about the schema.
func TestRegistryDownIsUnavailable(t *testing.T) {
	r := newRegistry(t)
	s := newSerde(t, r, schema.WithAutoRegister(true))
	data, _, err := s.Encode(context.Background(), "own", Ordered{OrderID: "o", Total: 1})
	if err != nil {
		t.Fatal(err)
	}
	srcl, err := sr.NewClient(sr.URLs("http://127.0.0.1:1")) // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	cold, err := schema.NewSerde(srcl, schema.WithAutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out Ordered
	if err := cold.Decode(ctx, "own", data, &out); !errors.Is(err, schema.ErrRegistryUnavailable) || errors.Is(err, schema.ErrUnknownSchemaID) {
		t.Fatalf("decode with the registry down: %v, want ErrRegistryUnavailable", err)
	}
	if _, _, err := cold.Encode(ctx, "own", Ordered{}); !errors.Is(err, schema.ErrRegistryUnavailable) {
		t.Fatalf("encode with the registry down: %v, want ErrRegistryUnavailable", err)
	}
}

// Register puts a type's schema in the registry before anything is
// encoded: a strict serde then finds it.
func TestRegisterAtStart(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	if err := newSerde(t, r, schema.WithAutoRegister(true)).Register(ctx, "start", Ordered{}, &Named{}); err != nil {
		t.Fatal(err)
	}
	if got := r.requests("POST /subjects/start-schema_test.Ordered/versions"); got != 1 {
		t.Fatalf("%d registrations of Ordered, want 1", got)
	}
	strict := newSerde(t, r)
	if err := strict.Register(ctx, "start", Named{}); err != nil {
		t.Fatalf("strict serde after Register: %v", err)
	}
	if err := strict.Register(ctx, "elsewhere", Ordered{}); !errors.Is(err, schema.ErrSchemaNotRegistered) {
		t.Fatalf("strict serde on a topic nothing registered: want ErrSchemaNotRegistered, got %v", err)
	}
	if err := strict.Register(ctx, "start", 42); err == nil {
		t.Fatal("Register(42): want an error")
	}
}
