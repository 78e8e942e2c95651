package schema_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/recq/recq/schema"
)

// The direct decoder reads what the serde writes exactly as the goavro path
// does, for every kind it handles, and for recursive types.
func TestDirectDecodeMatchesGoavro(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	for _, in := range []any{everything(), Everything{Color: "RED", Labels: map[string]string{}}, Node{1, &Node{2, nil}}, Ordered{OrderID: "o", Total: 3}} {
		data, _, err := s.Encode(ctx, "t", in)
		if err != nil {
			t.Fatal(err)
		}
		direct := reflect.New(reflect.TypeOf(in))
		viaGoavro := reflect.New(reflect.TypeOf(in))
		if err := s.DecodeDirect(ctx, "t", data, direct.Interface()); err != nil {
			t.Fatalf("%T: direct: %v", in, err)
		}
		if err := s.DecodeGoavro(ctx, "t", data, viaGoavro.Interface()); err != nil {
			t.Fatalf("%T: goavro: %v", in, err)
		}
		if !reflect.DeepEqual(direct.Elem().Interface(), viaGoavro.Elem().Interface()) || !reflect.DeepEqual(direct.Elem().Interface(), in) {
			t.Fatalf("%T:\n direct %+v\n goavro %+v\n in     %+v", in, direct.Elem(), viaGoavro.Elem(), in)
		}
	}
}

// Payloads of another writer schema take the goavro path, with resolution.
func TestDirectDecodeOnlyForItsOwnSchema(t *testing.T) {
	ctx := context.Background()
	s := newSerde(t, newRegistry(t), schema.WithAutoRegister(true))
	old, _, err := s.Encode(ctx, "evolve", SlimV1{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var v2 SlimV2
	if err := s.DecodeDirect(ctx, "evolve", old, &v2); !errors.Is(err, schema.ErrNoDirect) {
		t.Fatalf("older writer schema: want no direct decoder, got %v", err)
	}
	if err := s.Decode(ctx, "evolve", old, &v2); err != nil || v2 != (SlimV2{ID: "a", N: 5}) {
		t.Fatalf("older writer through goavro: %+v %v", v2, err)
	}
}

// SlimV1 and SlimV2 are two versions of one record without arrays or maps.
type (
	SlimV1 struct{ ID string }
	SlimV2 struct {
		ID string
		N  int `avro:"n,default=5"`
	}
)

func (SlimV1) AvroName() string { return "fast.Slim" }
func (SlimV2) AvroName() string { return "fast.Slim" }

// Whatever bytes arrive, the direct decoder never panics, and whenever it
// accepts a payload goavro reads the same value from it.
func FuzzDirectDecode(f *testing.F) {
	ctx := context.Background()
	s := newSerde(f, newRegistry(f), schema.WithAutoRegister(true))
	seed, _, err := s.Encode(ctx, "t", everything())
	if err != nil {
		f.Fatal(err)
	}
	header := seed[:5]
	f.Add(seed[5:])
	f.Add(seed[5 : len(seed)/2])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, payload []byte) {
		data := append(append([]byte{}, header...), payload...)
		var direct, viaGoavro Everything
		if err := s.DecodeDirect(ctx, "t", data, &direct); err != nil {
			if !errors.Is(err, schema.ErrMalformed) && !errors.Is(err, schema.ErrInvalidValue) {
				t.Fatalf("direct decode error is neither malformed nor invalid: %v", err)
			}
			return
		}
		if err := s.DecodeGoavro(ctx, "t", data, &viaGoavro); err != nil {
			t.Fatalf("direct accepted % x, goavro refused it: %v", payload, err)
		}
		// NaN is not equal to itself; both decoders must agree it is NaN.
		if math.IsNaN(direct.F64) && math.IsNaN(viaGoavro.F64) {
			direct.F64, viaGoavro.F64 = 0, 0
		}
		if math.IsNaN(float64(direct.F32)) && math.IsNaN(float64(viaGoavro.F32)) {
			direct.F32, viaGoavro.F32 = 0, 0
		}
		if !reflect.DeepEqual(direct, viaGoavro) {
			t.Fatalf("% x:\n direct %+v\n goavro %+v", payload, direct, viaGoavro)
		}
	})
}
