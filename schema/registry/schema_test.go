package registry

import (
	"strings"
	"testing"
)

// FuzzParseSchema feeds arbitrary text to the schema parser: it must not
// panic, and the canonical text of a valid schema must be a valid schema
// whose canonical text is itself.
func FuzzParseSchema(f *testing.F) {
	for _, seed := range []string{
		`"int"`, `{"type":"long"}`, `["null","string"]`,
		`{"type":"record","name":"R","namespace":"a.b","doc":"<&>","fields":[{"name":"f","type":"int","default":1,"aliases":["g"]}]}`,
		`{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`,
		`{"type":"array","items":{"type":"map","values":"bytes"}}`,
		`{"type":"fixed","name":"F","size":16,"logicalType":"decimal","precision":4,"scale":2}`,
		`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`,
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`,
		`{"type":"record","name":"R","fields":[{"name":"f","type":"double","default":1e400}]}`,
		`{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"record","name":"R","fields":[]}}]}`,
		`{"type":"enum","name":"E","symbols":[]}`, `{"type":"fixed","name":"F","size":-1}`,
		`{"type":"int","x-custom":{"b":1,"a":[true,null]}}`,
		"", `{`, `"int" "int"`, `[[[[[[]]]]]]`, `{"type":["int"]}`, `"\u0000"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ps, err := parseSchema(text)
		if err != nil {
			return
		}
		again, err := parseSchema(ps.canonical)
		if err != nil {
			t.Fatalf("canonical text %s of %q does not parse: %v", ps.canonical, text, err)
		}
		if again.canonical != ps.canonical {
			t.Fatalf("canonical text is not stable:\n%s\n%s", ps.canonical, again.canonical)
		}
	})
}

func TestDeepSchemasAreRejected(t *testing.T) {
	nest := func(n int) string {
		return strings.Repeat(`{"type":"array","items":`, n) + `"int"` + strings.Repeat("}", n)
	}
	if _, err := parseSchema(nest(maxSchemaDepth)); err != nil {
		t.Fatalf("schema nesting %d levels: %v", maxSchemaDepth, err)
	}
	if _, err := parseSchema(nest(maxSchemaDepth + 1)); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("schema nesting %d levels: %v, want an error about depth", maxSchemaDepth+1, err)
	}
}

func TestCanonicalText(t *testing.T) {
	got, err := parseSchema(" {\"fields\" : [ {\"default\":1.50, \"type\":\"double\",\"name\":\"f\"} ],\n\"name\":\"R\", \"doc\":\"a<b\",\"type\":\"record\", \"x-b\":1, \"x-a\":2}")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"record","name":"R","doc":"a<b","fields":[{"type":"double","name":"f","default":1.50}],"x-a":2,"x-b":1}`
	if got.canonical != want {
		t.Fatalf("canonical text\n got %s\nwant %s", got.canonical, want)
	}
}
