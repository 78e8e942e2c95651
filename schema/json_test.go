package schema_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
)

type Event struct {
	ID     string
	At     time.Time
	Note   *string
	Gone   *string
	Data   []byte
	Color  Color
	Labels map[string]int32
	Prev   *Address
	Ratio  float64
}

func jsonEvent() Event {
	return Event{
		ID:     "e1",
		At:     time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC),
		Note:   ptr("hi \"there\"\n"),
		Data:   []byte{0, 1, 'a', 0xff},
		Color:  "GREEN",
		Labels: map[string]int32{"b": 2, "a": 1},
		Prev:   &Address{Street: "S"},
		Ratio:  math.NaN(),
	}
}

const (
	plainEvent = `{"id":"e1","at":"2024-05-06T07:08:09.123Z","note":"hi \"there\"\n","gone":null,` +
		`"data":"\u0000\u0001aÿ","color":"GREEN","labels":{"a":1,"b":2},"prev":{"street":"S","zip":null},"ratio":"NaN"}`
	avroEvent = `{"id":"e1","at":1714979289123,"note":{"string":"hi \"there\"\n"},"gone":null,` +
		`"data":"\u0000\u0001aÿ","color":"GREEN","labels":{"a":1,"b":2},"prev":{"schema_test.Address":{"street":"S","zip":null}},"ratio":"NaN"}`
)

func TestDecodeJSON(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	data := write(t, r, "events", jsonEvent())
	s := newSerde(t, r) // knows no Go types
	for avro, want := range map[bool]string{false: plainEvent, true: avroEvent} {
		got, err := s.DecodeJSON(ctx, data, avro)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("avroJSON=%v:\n got %s\nwant %s", avro, got, want)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	data := write(t, r, "events", jsonEvent())
	const subject = "events-schema_test.Event"
	s := newSerde(t, r)

	// Plain and Avro JSON both encode the value the Go type did (compared
	// through JSON: goavro writes map entries in Go's random order); a
	// missing optional field takes its default.
	withoutGone := strings.Replace(plainEvent, `"gone":null,`, "", 1)
	for _, line := range []string{plainEvent, avroEvent, withoutGone} {
		encoded, err := s.EncodeJSON(ctx, subject, []byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if string(encoded[:5]) != string(data[:5]) {
			t.Errorf("header % x, want % x", encoded[:5], data[:5])
		}
		if got, err := s.DecodeJSON(ctx, encoded, false); err != nil || string(got) != plainEvent {
			t.Errorf("%s:\n got %s, %v", line, got, err)
		}
	}
	var ev Event
	if err := s.Decode(ctx, "events", data, &ev); err != nil {
		t.Fatal(err)
	}
	want := jsonEvent()
	if !math.IsNaN(ev.Ratio) {
		t.Errorf("ratio %v, want NaN", ev.Ratio)
	}
	ev.Ratio, want.Ratio = 0, 0 // NaN != NaN
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("decoded %+v", ev)
	}
	if n := r.requests("GET /subjects/" + subject + "/versions/latest"); n != 1 {
		t.Errorf("latest schema fetched %d times, want 1", n)
	}

	bad := []struct {
		line string
		msg  string
	}{
		{`not json`, "not a JSON value"},
		{`{"id":"e1"} {}`, "not a JSON value"},
		{replace(`"id":"e1"`, `"id":5`), `field "id": invalid value: expected string, got number`},
		{replace(`"id":"e1",`, ``), `field "id": invalid value: missing, and the schema gives no default`},
		{replace(`"id":"e1"`, `"id":"e1","nope":1`), `field "nope": invalid value: record schema_test.Event has no such field`},
		{replace(`"a":1`, `"a":1.5`), `field "labels[\"a\"]": invalid value: 1.5 is not an Avro int`},
		{replace(`"street":"S"`, `"street":1`), `field "prev.street": invalid value: expected string, got number`},
		{replace(`"color":"GREEN"`, `"color":"BLUE"`), `field "color": invalid value: "BLUE" is not a symbol`},
		{replace(`"at":"2024-05-06T07:08:09.123Z"`, `"at":"yesterday"`), `field "at": invalid value: timestamp "yesterday"`},
		{replace(`"data":"\u0000\u0001aÿ"`, `"data":"€"`), `field "data": invalid value: bytes are written as code points 0-255`},
		{replace(`"note":"hi \"there\"\n"`, `"note":{"long":1}`), `field "note": invalid value: expected string, got object`},
		{`[1,2]`, "expected schema_test.Event, got array"},
	}
	for _, c := range bad {
		_, err := s.EncodeJSON(ctx, subject, []byte(c.line))
		if !errors.Is(err, schema.ErrInvalidValue) || !strings.Contains(err.Error(), c.msg) ||
			!strings.HasPrefix(err.Error(), fmt.Sprintf("schema: encode JSON for subject %q: ", subject)) {
			t.Errorf("%s:\nwant %q, got %v", c.line, c.msg, err)
		}
	}

	if _, err := s.EncodeJSON(ctx, "nope-x.Y", []byte(`{}`)); !errors.Is(err, schema.ErrSchemaNotRegistered) {
		t.Errorf("unknown subject: %v", err)
	}
}

func replace(old, new string) string {
	if !strings.Contains(plainEvent, old) {
		panic(old)
	}
	return strings.Replace(plainEvent, old, new, 1)
}

func TestJSONLogicalTypesAndSpecialValues(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	const subject = "misc-x.Misc"
	if _, err := r.client.RegisterSchema(ctx, subject, sr.Schema{Schema: `{"type":"record","name":"x.Misc","fields":[
		{"name":"day","type":{"type":"int","logicalType":"date"}},
		{"name":"local","type":{"type":"long","logicalType":"local-timestamp-micros"}},
		{"name":"floats","type":{"type":"array","items":"float"}},
		{"name":"id","type":{"type":"fixed","name":"Id","size":2}},
		{"name":"any","type":["null","long","string","Id"]},
		{"name":"ctl","type":"string"}]}`}, -1, -1); err != nil {
		t.Fatal(err)
	}
	s := newSerde(t, r)
	const plain = `{"day":"2024-05-06","local":"2024-05-06T07:08:09.000001","floats":["Infinity","-Infinity",1.5],` +
		`"id":"\u0001ÿ","any":"text","ctl":"tab\there \u0007 é"}`
	const avro = `{"day":19849,"local":1714979289000001,"floats":["Infinity","-Infinity",1.5],` +
		`"id":"\u0001ÿ","any":{"string":"text"},"ctl":"tab\there \u0007 é"}`
	for _, line := range []string{plain, avro} {
		data, err := s.EncodeJSON(ctx, subject, []byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for avroJSON, want := range map[bool]string{false: plain, true: avro} {
			if got, err := s.DecodeJSON(ctx, data, avroJSON); err != nil || string(got) != want {
				t.Errorf("DecodeJSON(avro=%v):\n got %s, %v\nwant %s", avroJSON, got, err, want)
			}
		}
	}
	// An ambiguous bare value takes the first branch it fits; a wrapped one
	// names its branch (by full or short name).
	for line, want := range map[string]string{
		strings.Replace(plain, `"any":"text"`, `"any":5`, 1):              `"any":{"long":5}`,
		strings.Replace(plain, `"any":"text"`, `"any":{"Id":"ab"}`, 1):    `"any":{"x.Id":"ab"}`,
		strings.Replace(plain, `"any":"text"`, `"any":{"x.Id":"ab"}`, 1):  `"any":{"x.Id":"ab"}`,
		strings.Replace(plain, `"any":"text"`, `"any":null`, 1):           `"any":null`,
		strings.Replace(plain, `"any":"text"`, `"any":{"string":"5"}`, 1): `"any":{"string":"5"}`,
	} {
		data, err := s.EncodeJSON(ctx, subject, []byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got, _ := s.DecodeJSON(ctx, data, true); !strings.Contains(string(got), want) {
			t.Errorf("%s: got %s, want %s", line, got, want)
		}
	}
}
