package schema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recq/recq/schema"
)

type Named struct{ A int }

func (Named) AvroName() string { return "acme.events.Renamed" }

type Golden struct {
	ItemID   string
	HTTPCode int32
	At       time.Time
	Micro    time.Time `avro:",micros"`
	Took     time.Duration
	Note     *string
	Tags     []string
	Labels   map[string]float64
	Sum      [2]byte
	Named    Named
	Again    *Named
	Pos      struct{ X float32 }
	State    Color
	Priority int     `avro:"prio,default=3"`
	Owner    *string `avro:"owner,default=nobody"`
	CSV      string  `avro:"csv,default=a,b,c"`
	Quoted   string  `avro:"quoted,default=\"x\""`
}

func TestSchemaOfGolden(t *testing.T) {
	got, err := schema.SchemaOf(&Golden{})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"record","name":"Golden","namespace":"schema_test","fields":[
{"name":"item_id","type":"string"},
{"name":"http_code","type":"int"},
{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
{"name":"micro","type":{"type":"long","logicalType":"timestamp-micros"}},
{"name":"took","type":"long"},
{"name":"note","type":["null","string"],"default":null},
{"name":"tags","type":{"type":"array","items":"string"}},
{"name":"labels","type":{"type":"map","values":"double"}},
{"name":"sum","type":{"type":"fixed","name":"Golden_sum","namespace":"schema_test","size":2}},
{"name":"named","type":{"type":"record","name":"Renamed","namespace":"acme.events","fields":[{"name":"a","type":"long"}]}},
{"name":"again","type":["null","acme.events.Renamed"],"default":null},
{"name":"pos","type":{"type":"record","name":"Golden_pos","namespace":"schema_test","fields":[{"name":"x","type":"float"}]}},
{"name":"state","type":{"type":"enum","name":"Color","namespace":"schema_test","symbols":["RED","GREEN"]}},
{"name":"prio","type":"long","default":3},
{"name":"owner","type":["string","null"],"default":"nobody"},
{"name":"csv","type":"string","default":"a,b,c"},
{"name":"quoted","type":"string","default":"x"}]}`
	if got != strings.ReplaceAll(want, "\n", "") {
		t.Errorf("got\n%s", got)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not JSON")
	}
	// Cached: the same text again.
	if again, _ := schema.SchemaOf(Golden{}); again != got {
		t.Error("second derivation differs")
	}
}

type Cases struct {
	ID         string
	UserID     string
	HTTPServer string
	Total2     int
	URL        string
	A          int
	ÜberName   string
}

func TestFieldNamesAreSnakeCase(t *testing.T) {
	got, err := schema.SchemaOf(Cases{})
	if err == nil {
		t.Fatalf("non-ASCII field name accepted: %s", got)
	}
	if !errors.Is(err, schema.ErrUnsupportedType) || !strings.Contains(err.Error(), "ÜberName") {
		t.Errorf("want the Go field named, got %v", err)
	}
	type Ascii struct {
		ID         string
		UserID     string
		HTTPServer string
		Total2     int
		URL        string
		A          int
	}
	got, err = schema.SchemaOf(Ascii{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"id", "user_id", "http_server", "total2", "url", "a"} {
		if !strings.Contains(got, `"name":"`+name+`"`) {
			t.Errorf("no field %q in %s", name, got)
		}
	}
}

type Generic[T any] struct{ V T }

func TestDerivationErrors(t *testing.T) {
	cases := []struct {
		v    any
		want error
		msg  string
	}{
		{struct{ C chan int }{}, schema.ErrUnsupportedType, "field C: unsupported type: chan int"},
		{struct{ F func() }{}, schema.ErrUnsupportedType, "field F"},
		{struct{ I any }{}, schema.ErrUnsupportedType, "field I"},
		{struct{ M map[int]string }{}, schema.ErrUnsupportedType, "map key int"},
		{struct{ P **int }{}, schema.ErrUnsupportedType, "pointer to a pointer"},
		{struct{ C complex128 }{}, schema.ErrUnsupportedType, "field C"},
		{Generic[int]{}, schema.ErrUnsupportedType, "needs an AvroName method"},
		{struct {
			A string `avro:"x"`
			B string `avro:"x"`
		}{}, schema.ErrUnsupportedType, `both map to "x"`},
		{struct {
			N int `avro:"n,default=abc"`
		}{}, schema.ErrInvalidValue, "default=abc"},
		{struct {
			N int32 `avro:"n,default=3000000000"`
		}{}, schema.ErrInvalidValue, "not an Avro int"},
		{struct {
			C Color `avro:"c,default=BLUE"`
		}{}, schema.ErrInvalidValue, `"BLUE" is not a symbol`},
		{struct {
			N int `avro:"n,omitempty"`
		}{}, schema.ErrUnsupportedType, `unknown avro tag option "omitempty"`},
		{struct {
			A Named
			B struct{ A int } `avro:"b"`
			C Clash
		}{}, schema.ErrUnsupportedType, "both have the Avro name acme.events.Renamed"},
		{5, schema.ErrUnsupportedType, "want a struct"},
		{nil, schema.ErrUnsupportedType, "want a struct"},
	}
	for _, c := range cases {
		_, err := schema.SchemaOf(c.v)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("SchemaOf(%T): want %v with %q, got %v", c.v, c.want, c.msg, err)
		}
	}
}

type Clash struct{ A int }

func (Clash) AvroName() string { return "acme.events.Renamed" }

func TestSuppliedSchemaMustFitTheType(t *testing.T) {
	r := newRegistry(t)
	cases := []struct {
		avsc string
		msg  string
	}{
		{`{"type":"record","name":"x.O","fields":[{"name":"order_id","type":"string"}]}`, `Go field schema_test.Ordered.Total ("total") is not in x.O`},
		{`{"type":"record","name":"x.O","fields":[{"name":"order_id","type":"string"},{"name":"total","type":"long"},{"name":"more","type":"int"}]}`, `field "more": incompatible schema: schema_test.Ordered has no Go field`},
		{`{"type":"record","name":"x.O","fields":[{"name":"order_id","type":"int"},{"name":"total","type":"long"}]}`, `field "order_id": incompatible schema: Go type string cannot hold Avro int`},
		{`{"type":"record","name":"x.O","fields":[{"name":"order_id","type":"string"},{"name":"total","type":{"type":"long","logicalType":"timestamp-millis"}}]}`, ""},
		{`"string"`, "is a string, want a record"},
		{`{"type":"record","name":"x.O","fields":[{"name":"order_id","type":"Nope"}]}`, `unknown type "Nope"`},
		{`not json`, "not JSON"},
	}
	for _, c := range cases {
		_, err := schema.NewSerde(r.client, schema.WithSchema(Ordered{}, c.avsc))
		if c.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", c.avsc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s:\nwant %q, got %v", c.avsc, c.msg, err)
		}
	}
	if err := (schema.Config{Schemas: map[reflect.Type]string{nil: "{}"}}).Validate(); !errors.Is(err, schema.ErrUnsupportedType) {
		t.Errorf("nil type: %v", err)
	}
}
