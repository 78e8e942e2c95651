package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// kind is an Avro type.
type kind uint8

const (
	kindNull kind = iota + 1
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindFixed
	kindUnion
)

var kindNames = [...]string{
	kindNull: "null", kindBoolean: "boolean", kindInt: "int", kindLong: "long",
	kindFloat: "float", kindDouble: "double", kindBytes: "bytes", kindString: "string",
	kindRecord: "record", kindEnum: "enum", kindArray: "array", kindMap: "map",
	kindFixed: "fixed", kindUnion: "union",
}

func (k kind) String() string { return kindNames[k] }

func (k kind) primitive() bool { return k >= kindNull && k <= kindString }

// primitiveKinds maps the primitive type names to kinds.
var primitiveKinds = map[string]kind{
	"null": kindNull, "boolean": kindBoolean, "int": kindInt, "long": kindLong,
	"float": kindFloat, "double": kindDouble, "bytes": kindBytes, "string": kindString,
}

// avroType is the package's model of an Avro schema. Derived schemas, supplied
// .avsc files and writer schemas from the registry all become this model, so
// binding to Go types, resolution and JSON conversion have one input. Named
// types are shared pointers: a recursive schema is a cyclic graph.
type avroType struct {
	kind     kind
	name     string   // full name of a record, enum or fixed
	aliases  []string // full names
	logical  string   // logicalType, "" for none
	fields   []*avroField
	symbols  []string
	enumDef  string    // enum default symbol, "" for none
	elem     *avroType // array items or map values
	branches []*avroType
	size     int // fixed size
}

type avroField struct {
	name    string
	aliases []string
	typ     *avroType
	def     json.RawMessage // nil: no default
}

// branchName is the name goavro uses for a union branch; the codec schema
// carries no logical types, so primitives use their plain names.
func (t *avroType) branchName() string {
	if t.name != "" {
		return t.name
	}
	return t.kind.String()
}

// label names the type in messages: full name or kind, plus logical type.
func (t *avroType) label() string {
	s := t.branchName()
	if t.logical != "" {
		s += " (" + t.logical + ")"
	}
	return s
}

// shortName is a full name without its namespace.
func shortName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

// parseSchema reads .avsc JSON into the model.
func parseSchema(text string) (*avroType, error) {
	v, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	p := parser{named: map[string]*avroType{}}
	return p.parse(v, "")
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number
// so longs keep their precision.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

type parser struct{ named map[string]*avroType }

func (p *parser) parse(v any, ns string) (*avroType, error) {
	switch s := v.(type) {
	case string:
		return p.ref(s, ns)
	case []any:
		return p.union(s, ns)
	case map[string]any:
		return p.object(s, ns)
	}
	return nil, fmt.Errorf("a type must be a name, a union array or an object, not %v", v)
}

func (p *parser) ref(name, ns string) (*avroType, error) {
	if k, ok := primitiveKinds[name]; ok {
		return &avroType{kind: k}, nil
	}
	if !strings.Contains(name, ".") && ns != "" {
		if t, ok := p.named[ns+"."+name]; ok {
			return t, nil
		}
	}
	if t, ok := p.named[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("unknown type %q", name)
}

func (p *parser) union(s []any, ns string) (*avroType, error) {
	u := &avroType{kind: kindUnion}
	seen := map[string]bool{}
	for _, b := range s {
		bt, err := p.parse(b, ns)
		if err != nil {
			return nil, err
		}
		if bt.kind == kindUnion {
			return nil, fmt.Errorf("a union cannot contain a union")
		}
		if seen[bt.branchName()] {
			return nil, fmt.Errorf("union has two %s branches", bt.branchName())
		}
		seen[bt.branchName()] = true
		u.branches = append(u.branches, bt)
	}
	if len(u.branches) == 0 {
		return nil, fmt.Errorf("empty union")
	}
	return u, nil
}

func (p *parser) object(s map[string]any, ns string) (*avroType, error) {
	logical, _ := s["logicalType"].(string)
	name, ok := s["type"].(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the attribute is the type.
		return p.parse(s["type"], ns)
	}
	switch name {
	case "record", "error":
		return p.record(s, ns)
	case "enum":
		t, err := p.define(s, ns, kindEnum)
		if err != nil {
			return nil, err
		}
		if t.symbols, err = stringList(s["symbols"]); err != nil || len(t.symbols) == 0 {
			return nil, fmt.Errorf("enum %s: symbols must be a non-empty array of names", t.name)
		}
		if d, ok := s["default"].(string); ok {
			if !contains(t.symbols, d) {
				return nil, fmt.Errorf("enum %s: default %q is not a symbol", t.name, d)
			}
			t.enumDef = d
		}
		return t, nil
	case "fixed":
		t, err := p.define(s, ns, kindFixed)
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(fmt.Sprint(s["size"]))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("fixed %s: size must be a non-negative integer", t.name)
		}
		t.size, t.logical = size, logical
		return t, nil
	case "array", "map":
		attr, k := "items", kindArray
		if name == "map" {
			attr, k = "values", kindMap
		}
		elem, err := p.parse(s[attr], ns)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", name, attr, err)
		}
		return &avroType{kind: k, elem: elem}, nil
	}
	t, err := p.ref(name, ns)
	if err != nil || !t.kind.primitive() {
		return t, err
	}
	t.logical = logical
	return t, nil
}

// define registers a named type before its body is parsed, so the body may
// refer to it (recursive records).
func (p *parser) define(s map[string]any, ns string, k kind) (*avroType, error) {
	name, _ := s["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("a %s needs a name", k)
	}
	full := fullName(name, s["namespace"], ns)
	if _, dup := p.named[full]; dup {
		return nil, fmt.Errorf("type %s is defined twice", full)
	}
	if _, prim := primitiveKinds[shortName(full)]; prim {
		return nil, fmt.Errorf("type name %s redefines a primitive", full)
	}
	t := &avroType{kind: k, name: full}
	aliases, err := stringList(s["aliases"])
	if err != nil {
		return nil, fmt.Errorf("%s aliases: %w", full, err)
	}
	for _, a := range aliases {
		t.aliases = append(t.aliases, fullName(a, nil, namespaceOf(full)))
	}
	p.named[full] = t
	return t, nil
}

func (p *parser) record(s map[string]any, ns string) (*avroType, error) {
	t, err := p.define(s, ns, kindRecord)
	if err != nil {
		return nil, err
	}
	fields, ok := s["fields"].([]any)
	if !ok {
		return nil, fmt.Errorf("record %s: fields must be an array", t.name)
	}
	seen := map[string]bool{}
	for i, fv := range fields {
		fm, ok := fv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s: field %d is not an object", t.name, i)
		}
		f := &avroField{}
		if f.name, _ = fm["name"].(string); f.name == "" || seen[f.name] {
			return nil, fmt.Errorf("record %s: field %d needs a unique name", t.name, i)
		}
		seen[f.name] = true
		if f.typ, err = p.parse(fm["type"], namespaceOf(t.name)); err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", t.name, f.name, err)
		}
		if f.aliases, err = stringList(fm["aliases"]); err != nil {
			return nil, fmt.Errorf("record %s field %q aliases: %w", t.name, f.name, err)
		}
		if d, ok := fm["default"]; ok {
			if f.def, err = json.Marshal(d); err != nil {
				return nil, fmt.Errorf("record %s field %q default: %w", t.name, f.name, err)
			}
		}
		t.fields = append(t.fields, f)
	}
	return t, nil
}

// fullName applies the Avro naming rules: a dotted name is already full,
// otherwise the namespace attribute, else the enclosing namespace, applies.
func fullName(name string, nsAttr any, enclosing string) string {
	if strings.Contains(name, ".") {
		return name
	}
	ns := enclosing
	if s, ok := nsAttr.(string); ok {
		ns = s
	}
	if ns == "" {
		return name
	}
	return ns + "." + name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not an array")
	}
	out := make([]string, len(list))
	for i, e := range list {
		if out[i], ok = e.(string); !ok {
			return nil, fmt.Errorf("element %d is not a string", i)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// schemaJSON writes t as .avsc. With logical false it drops logicalType
// attributes: the goavro codecs are built that way so their native values are
// plain ints, longs and bytes, which the package converts itself (one code path
// for time.Time, and no surprises from goavro's logical-type conversions).
// With logical true it serves derived schemas, which use no logical type with
// attributes of its own (decimal's precision and scale are not kept).
func schemaJSON(t *avroType, logical bool) string {
	w := schemaWriter{logical: logical, defined: map[*avroType]bool{}}
	w.write(t)
	return w.b.String()
}

type schemaWriter struct {
	b       strings.Builder
	logical bool
	defined map[*avroType]bool
}

func (w *schemaWriter) str(s string) { w.b.Write(appendJSONString(nil, s)) }

func (w *schemaWriter) write(t *avroType) {
	switch {
	case t.kind == kindUnion:
		w.b.WriteByte('[')
		for i, b := range t.branches {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.write(b)
		}
		w.b.WriteByte(']')
		return
	case t.kind.primitive():
		if t.logical == "" || !w.logical {
			w.str(t.kind.String())
			return
		}
		w.b.WriteString(`{"type":`)
		w.str(t.kind.String())
		w.b.WriteString(`,"logicalType":`)
		w.str(t.logical)
		w.b.WriteByte('}')
		return
	case t.name != "" && w.defined[t]:
		w.str(t.name)
		return
	}
	w.defined[t] = true
	w.b.WriteString(`{"type":`)
	w.str(t.kind.String())
	if t.name != "" {
		w.b.WriteString(`,"name":`)
		w.str(shortName(t.name))
		w.b.WriteString(`,"namespace":`)
		w.str(namespaceOf(t.name))
		if len(t.aliases) > 0 {
			w.b.WriteString(`,"aliases":`)
			w.strings(t.aliases)
		}
	}
	switch t.kind {
	case kindRecord:
		w.b.WriteString(`,"fields":[`)
		for i, f := range t.fields {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(`{"name":`)
			w.str(f.name)
			w.b.WriteString(`,"type":`)
			w.write(f.typ)
			if f.def != nil {
				w.b.WriteString(`,"default":`)
				w.b.Write(f.def)
			}
			if len(f.aliases) > 0 {
				w.b.WriteString(`,"aliases":`)
				w.strings(f.aliases)
			}
			w.b.WriteByte('}')
		}
		w.b.WriteByte(']')
	case kindEnum:
		w.b.WriteString(`,"symbols":`)
		w.strings(t.symbols)
		if t.enumDef != "" {
			w.b.WriteString(`,"default":`)
			w.str(t.enumDef)
		}
	case kindFixed:
		w.b.WriteString(`,"size":`)
		w.b.WriteString(strconv.Itoa(t.size))
		if t.logical != "" && w.logical {
			w.b.WriteString(`,"logicalType":`)
			w.str(t.logical)
		}
	case kindArray:
		w.b.WriteString(`,"items":`)
		w.write(t.elem)
	case kindMap:
		w.b.WriteString(`,"values":`)
		w.write(t.elem)
	}
	w.b.WriteByte('}')
}

func (w *schemaWriter) strings(list []string) {
	w.b.WriteByte('[')
	for i, s := range list {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.str(s)
	}
	w.b.WriteByte(']')
}
