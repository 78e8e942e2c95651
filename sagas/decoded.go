package sagas

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/recq/recq/sagas/store"
)

// Decoding an instance's JSON state before every event was the largest
// part of handling one: for a state type whose JSON reads back as the
// value it was written from, the runner keeps, beside each instance's
// latest form, the value its handler left, and gives it to the next
// handler instead of decoding the form's JSON again. The handler sees the
// same value either way; a rebuild from the store decodes as before.

// held is the state value an instance's form was marshalled from: raw is
// the form's State (the same bytes, not a copy, so a form derived from
// another, or one read from the store, is told apart).
type held[S any] struct {
	raw *byte
	s   S
}

// decoded says whether the JSON of state values of type t reads back,
// into a zero value, as the value it was written from (up to which map or
// slice it is, not what it holds): exported fields of booleans, numbers,
// strings, and structs, slices, arrays and maps with string keys of them,
// with no embedding, no "-" field, no two fields of one name and no
// custom (un)marshalling. Strings that are not valid UTF-8 do not read
// back; see keepable.
func decoded(t reflect.Type) bool { return plain(t, map[reflect.Type]bool{}) }

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func plain(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true // a recursive type: decided where it started
	}
	seen[t] = true
	for _, m := range []reflect.Type{jsonMarshaler, jsonUnmarshaler, textMarshaler, textUnmarshaler} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice, reflect.Array:
		return plain(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String && plain(t.Key(), seen) && plain(t.Elem(), seen)
	case reflect.Struct:
		names := map[string]bool{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || f.Anonymous || name == "-" {
				return false
			}
			if name == "" {
				name = f.Name
			}
			if names[name] || !plain(f.Type, seen) {
				return false
			}
			names[name] = true
		}
		return true
	}
	return false
}

// keepable says whether b, the JSON of a value of a decoded type, reads
// back as that value: not if the encoder replaced invalid UTF-8 in one of
// its strings (it writes \ufffd for it; a string holding that text shows
// it too, and is merely decoded again).
func keepable(b []byte) bool { return !bytes.Contains(b, []byte(`\ufffd`)) }

// take returns, and forgets, the value in's state was marshalled from,
// if the member holds it: a handler changes it in place.
func (v view[S]) take(in *store.Instance) (S, bool) {
	h, ok := v.h.states[in.ID]
	if !ok || len(in.State) == 0 || h.raw != &in.State[0] {
		var zero S
		return zero, false
	}
	delete(v.h.states, in.ID)
	return h.s, true
}

// keep holds s as the value out's state was marshalled from.
func (v view[S]) keep(out *store.Instance, s S) {
	v.h.states[out.ID] = held[S]{raw: &out.State[0], s: s}
}
