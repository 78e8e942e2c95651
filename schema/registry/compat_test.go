package registry

import (
	"fmt"
	"testing"

	"github.com/hamba/avro/v2"
)

// recordSchema makes a record schema named name with the given fields (JSON).
func recordSchema(name, fields string) string {
	return fmt.Sprintf(`{"type":"record","name":%q,"fields":[%s]}`, name, fields)
}

func mustParse(t *testing.T, text string) avro.Schema {
	t.Helper()
	ps, err := parseSchema(text)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return ps.avro
}

var allLevels = []Level{LevelNone, LevelBackward, LevelBackwardTransitive, LevelForward,
	LevelForwardTransitive, LevelFull, LevelFullTransitive}

// TestCompatibilityMatrix checks one change (old -> new) under every level.
// backward: the new schema reads data written with the old one; forward:
// the old schema reads data written with the new one. With a single prior
// version, transitive levels answer as their plain counterparts.
func TestCompatibilityMatrix(t *testing.T) {
	const (
		enumABC        = `{"type":"enum","name":"E","symbols":["A","B","C"]}`
		enumAB         = `{"type":"enum","name":"E","symbols":["A","B"]}`
		enumABDefault  = `{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`
		enumABCDefault = `{"type":"enum","name":"E","symbols":["A","B","C"],"default":"A"}`
	)
	inner := func(fields string) string { return `{"name":"in","type":` + recordSchema("Inner", fields) + `}` }
	tests := []struct {
		name              string
		old, new          string
		backward, forward bool
	}{
		{"add field with default", recordSchema("R", `{"name":"a","type":"int"}`),
			recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}`), true, true},
		{"add field without default", recordSchema("R", `{"name":"a","type":"int"}`),
			recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"string"}`), false, true},
		{"remove field with default", recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}`),
			recordSchema("R", `{"name":"a","type":"int"}`), true, true},
		{"remove field without default", recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"string"}`),
			recordSchema("R", `{"name":"a","type":"int"}`), true, false},
		{"change a default", recordSchema("R", `{"name":"a","type":"int","default":1}`),
			recordSchema("R", `{"name":"a","type":"int","default":2}`), true, true},
		{"int to long", `"int"`, `"long"`, true, false},
		{"long to int", `"long"`, `"int"`, false, true},
		{"int to float", `"int"`, `"float"`, true, false},
		{"long to double", `"long"`, `"double"`, true, false},
		{"float to double", `"float"`, `"double"`, true, false},
		{"double to float", `"double"`, `"float"`, false, true},
		{"string to bytes", `"string"`, `"bytes"`, true, true},
		{"bytes to string", `"bytes"`, `"string"`, true, true},
		{"string to int", `"string"`, `"int"`, false, false},
		{"field int to long", recordSchema("R", `{"name":"a","type":"int"}`), recordSchema("R", `{"name":"a","type":"long"}`), true, false},
		{"array items int to long", `{"type":"array","items":"int"}`, `{"type":"array","items":"long"}`, true, false},
		{"map values float to double", `{"type":"map","values":"float"}`, `{"type":"map","values":"double"}`, true, false},
		{"enum symbol added", enumAB, enumABC, true, false},
		{"enum symbol added, old enum has default", enumABDefault, enumABCDefault, true, true},
		{"enum symbol removed", enumABC, enumAB, false, true},
		{"enum symbol removed, new enum has default", enumABCDefault, enumABDefault, true, true},
		{"union branch added", `["null","string"]`, `["null","string","int"]`, true, false},
		{"union branch removed", `["null","string","int"]`, `["null","string"]`, false, true},
		{"type made nullable", `"string"`, `["null","string"]`, true, false},
		{"nullable made required", `["null","string"]`, `"string"`, false, true},
		{"union branch promoted", `["null","int"]`, `["null","long"]`, true, false},
		{"nested field added with default", recordSchema("R", inner(`{"name":"x","type":"int"}`)),
			recordSchema("R", inner(`{"name":"x","type":"int"},{"name":"y","type":"int","default":0}`)), true, true},
		{"nested field added without default", recordSchema("R", inner(`{"name":"x","type":"int"}`)),
			recordSchema("R", inner(`{"name":"x","type":"int"},{"name":"y","type":"int"}`)), false, true},
		{"nested field type changed", recordSchema("R", inner(`{"name":"x","type":"int"}`)),
			recordSchema("R", inner(`{"name":"x","type":"string"}`)), false, false},
		{"field renamed with alias", recordSchema("R", `{"name":"name","type":"string"}`),
			recordSchema("R", `{"name":"fullName","type":"string","aliases":["name"]}`), true, false},
		{"field renamed without alias", recordSchema("R", `{"name":"name","type":"string"}`),
			recordSchema("R", `{"name":"fullName","type":"string"}`), false, false},
		{"record renamed with alias", recordSchema("User", `{"name":"a","type":"int"}`),
			`{"type":"record","name":"Person","aliases":["User"],"fields":[{"name":"a","type":"int"}]}`, true, false},
		{"record renamed without alias", recordSchema("User", `{"name":"a","type":"int"}`), recordSchema("Person", `{"name":"a","type":"int"}`), false, false},
		{"enum renamed with alias", enumAB, `{"type":"enum","name":"F","aliases":["E"],"symbols":["A","B"]}`, true, false},
		{"fixed size changed", `{"type":"fixed","name":"F","size":4}`, `{"type":"fixed","name":"F","size":8}`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldSchema, newSchema := mustParse(t, tc.old), mustParse(t, tc.new)
			for _, level := range allLevels {
				want := (!level.backward() || tc.backward) && (!level.forward() || tc.forward)
				msgs := checkCompatibility(level, newSchema, []priorSchema{{version: 1, schema: oldSchema}})
				if got := len(msgs) == 0; got != want {
					t.Errorf("%s: compatible = %v, want %v (messages %q)", level, got, want, msgs)
				}
			}
		})
	}
}

// TestTransitiveLevels checks three-version histories where v3 is
// compatible with v2 but not with v1: the plain levels (latest only) accept
// v3, the transitive ones reject it.
func TestTransitiveLevels(t *testing.T) {
	a := `{"name":"a","type":"string"}`
	tests := []struct {
		name       string
		v1, v2, v3 string
		plain      Level
		transitive Level
	}{
		{"backward: field gains a default then loses it",
			recordSchema("R", a), recordSchema("R", a+`,{"name":"b","type":"string","default":"x"}`), recordSchema("R", a+`,{"name":"b","type":"string"}`),
			LevelBackward, LevelBackwardTransitive},
		{"forward: field gains a default then is removed",
			recordSchema("R", a+`,{"name":"b","type":"string"}`), recordSchema("R", a+`,{"name":"b","type":"string","default":"x"}`), recordSchema("R", a),
			LevelForward, LevelForwardTransitive},
		{"full: field gains a default then loses it",
			recordSchema("R", a), recordSchema("R", a+`,{"name":"b","type":"string","default":"x"}`), recordSchema("R", a+`,{"name":"b","type":"string"}`),
			LevelFull, LevelFullTransitive},
		{"backward: enum drops a symbol behind a default, then the default",
			`{"type":"enum","name":"E","symbols":["A","B","C"]}`,
			`{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`,
			`{"type":"enum","name":"E","symbols":["A","B"]}`,
			LevelBackward, LevelBackwardTransitive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prior := []priorSchema{{1, mustParse(t, tc.v1)}, {2, mustParse(t, tc.v2)}}
			v3 := mustParse(t, tc.v3)
			if msgs := checkCompatibility(tc.plain, v3, prior); len(msgs) != 0 {
				t.Errorf("%s: v3 rejected: %q", tc.plain, msgs)
			}
			if msgs := checkCompatibility(tc.transitive, v3, prior); len(msgs) == 0 {
				t.Errorf("%s: v3 accepted, want rejected for v1", tc.transitive)
			}
		})
	}
}

// TestCheckerIsNotReused guards against reusing one hamba/avro
// SchemaCompatibility: its cache keys on the Parsing Canonical Form, which
// ignores defaults, so after checking a reader whose field has no default,
// a reader differing only by a default would get the cached answer.
func TestCheckerIsNotReused(t *testing.T) {
	writer := mustParse(t, recordSchema("R", `{"name":"a","type":"int"}`))
	noDefault := mustParse(t, recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"int"}`))
	withDefault := mustParse(t, recordSchema("R", `{"name":"a","type":"int"},{"name":"b","type":"int","default":0}`))
	if noDefault.Fingerprint() != withDefault.Fingerprint() {
		t.Fatal("the two readers must share a canonical form for this test to mean anything")
	}

	for _, order := range [][]avro.Schema{{noDefault, withDefault}, {withDefault, noDefault}} {
		for _, reader := range order {
			err := compatible(reader, writer)
			if want := reader == withDefault; (err == nil) != want {
				t.Errorf("compatible(reader with default = %v) = %v, want compatible = %v", reader == withDefault, err, want)
			}
			msgs := checkCompatibility(LevelBackward, reader, []priorSchema{{1, writer}})
			if want := reader == withDefault; (len(msgs) == 0) != want {
				t.Errorf("checkCompatibility(reader with default = %v) = %q, want compatible = %v", reader == withDefault, msgs, want)
			}
		}
	}

	shared := avro.NewSchemaCompatibility()
	_ = shared.Compatible(noDefault, writer)
	if shared.Compatible(withDefault, writer) == nil {
		t.Log("hamba/avro no longer answers from a default-blind cache; the fresh checker per check is now only a precaution")
	}
}
