package sagas

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type (
	plainState struct {
		Count  int64
		Amount float64 `json:"amount,omitempty"`
		Name   string  `json:",string"`
		Tags   []string
		Lines  map[string]plainLine
		Raw    []byte
		Next   []plainState // recursive
		Fixed  [2]uint8
	}
	plainLine struct{ Qty int }
	named     string
)

// textKey decodes as something else than it encodes.
type textKey string

func (k textKey) MarshalText() ([]byte, error) { return []byte("k-" + k), nil }

func TestDecodedTypes(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{plainState{}, true},
		{named(""), true},
		{map[named]int{}, true},
		{struct{ When time.Time }{}, false}, // its own (un)marshalling
		{struct{ hidden int }{}, false},
		{struct {
			A int `json:"-"`
		}{}, false},
		{struct{ plainLine }{}, false}, // embedded
		{struct {
			A int `json:"B"`
			B int
		}{}, false},
		{struct{ P *int }{}, false},
		{struct{ V any }{}, false},
		{map[int]string{}, false},
		{map[textKey]int{}, false},
		{json.RawMessage{}, false},
	} {
		if got := decoded(reflect.TypeOf(c.v)); got != c.want {
			t.Errorf("decoded(%T) = %v, want %v", c.v, got, c.want)
		}
	}
}

// What decoded accepts reads back as written, invalid UTF-8 aside, which
// keepable refuses.
func TestDecodedReadsBack(t *testing.T) {
	v := plainState{Count: 3, Amount: 0.1, Name: `a "b" <c>`, Tags: []string{}, Lines: map[string]plainLine{"x": {2}},
		Raw: []byte{0, 1}, Next: []plainState{{Count: 1}}, Fixed: [2]uint8{1, 2}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back plainState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Fatalf("read back %+v, want %+v", back, v)
	}
	bad, _ := json.Marshal(plainState{Name: "\xff"})
	if keepable(bad) {
		t.Fatalf("%s: invalid UTF-8 does not read back, yet keepable", bad)
	}
	if !keepable(b) {
		t.Fatalf("%s: not keepable", b)
	}
}
