package schema

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// Namer is implemented by Go types that choose their Avro full name
// ("namespace.Name") instead of "<package>.<Type>". It is called on the zero
// value, so it must not depend on the value.
type Namer interface{ AvroName() string }

// Enum is implemented by Go types encoded as Avro enums. It is called on the
// zero value. A string-kinded type's values are its symbols; an
// integer-kinded type's value i is symbol i. The enum is named like a record
// (Namer, else "<package>.<Type>").
type Enum interface{ AvroSymbols() []string }

var (
	timeType  = reflect.TypeFor[time.Time]()
	namerType = reflect.TypeFor[Namer]()
	enumType  = reflect.TypeFor[Enum]()
)

// SchemaOf returns the Avro schema (.avsc JSON) derived from v's type, a
// struct or a pointer to one. See the package documentation for the rules.
func SchemaOf(v any) (string, error) {
	t, err := structType(reflect.TypeOf(v))
	if err != nil {
		return "", err
	}
	d := derived(t)
	return d.avsc, d.err
}

// structType accepts a struct type or a pointer to one.
func structType(t reflect.Type) (reflect.Type, error) {
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || t == timeType {
		return nil, unsupported("schema: want a struct or a pointer to a struct, got %v", t)
	}
	return t, nil
}

type derivation struct {
	node *avroType
	avsc string
	err  error
}

// derivations caches derived schemas per Go type for the process: derivation
// is a pure function of the type.
var derivations readMap[reflect.Type, *derivation]

func derived(t reflect.Type) *derivation {
	if d, ok := derivations.load(t); ok {
		return d
	}
	d := &derivation{}
	dr := deriver{named: map[reflect.Type]*avroType{}, owners: map[string]reflect.Type{}}
	if d.node, d.err = dr.record(t, ""); d.err != nil {
		d.err = fmt.Errorf("schema: derive %v: %w", t, d.err)
	} else {
		d.avsc = schemaJSON(d.node, true)
	}
	return derivations.storeOnce(t, d)
}

type deriver struct {
	named  map[reflect.Type]*avroType // records, enums and fixed built so far
	owners map[string]reflect.Type    // Avro full name → Go type, to catch clashes
}

// typ maps a Go type to an Avro type. where is an Avro full name used to name
// anonymous structs and byte arrays after the field that holds them.
func (d *deriver) typ(t reflect.Type, o tagOpts, where string) (*avroType, error) {
	if t == timeType {
		logical := "timestamp-millis"
		if o.micros {
			logical = "timestamp-micros"
		}
		return &avroType{kind: kindLong, logical: logical}, nil
	}
	if reflect.PointerTo(t).Implements(enumType) {
		return d.enum(t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return &avroType{kind: kindBoolean}, nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return &avroType{kind: kindInt}, nil
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return &avroType{kind: kindLong}, nil
	case reflect.Float32:
		return &avroType{kind: kindFloat}, nil
	case reflect.Float64:
		return &avroType{kind: kindDouble}, nil
	case reflect.String:
		return &avroType{kind: kindString}, nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if t.Kind() == reflect.Slice {
				return &avroType{kind: kindBytes}, nil
			}
			return d.fixed(t, where)
		}
		elem, err := d.typ(t.Elem(), o, where)
		if err != nil {
			return nil, err
		}
		return &avroType{kind: kindArray, elem: elem}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, unsupported("map key %v: Avro map keys are strings", t.Key())
		}
		elem, err := d.typ(t.Elem(), o, where)
		if err != nil {
			return nil, err
		}
		return &avroType{kind: kindMap, elem: elem}, nil
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil, unsupported("%v: a pointer to a pointer has no Avro form", t)
		}
		elem, err := d.typ(t.Elem(), o, where)
		if err != nil {
			return nil, err
		}
		return &avroType{kind: kindUnion, branches: []*avroType{{kind: kindNull}, elem}}, nil
	case reflect.Struct:
		return d.record(t, where)
	}
	return nil, unsupported("%v has no Avro form", t)
}

func (d *deriver) record(t reflect.Type, where string) (*avroType, error) {
	if n, ok := d.named[t]; ok {
		return n, nil
	}
	rec, err := d.define(t, kindRecord, where)
	if err != nil {
		return nil, err
	}
	fields, err := structFields(t)
	if err != nil {
		return nil, err
	}
	for _, gf := range fields {
		ft, err := d.typ(gf.typ, gf.opts, rec.name+"_"+gf.name)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", gf.goName, err)
		}
		f := &avroField{name: gf.name, typ: ft}
		switch {
		case gf.opts.hasDef:
			if f.def, err = tagDefault(ft, gf.opts.def); err != nil {
				return nil, fmt.Errorf("field %s: default=%s: %w", gf.goName, gf.opts.def, err)
			}
		case ft.kind == kindUnion:
			f.def = json.RawMessage("null")
		}
		rec.fields = append(rec.fields, f)
	}
	return rec, nil
}

func (d *deriver) enum(t reflect.Type) (*avroType, error) {
	if n, ok := d.named[t]; ok {
		return n, nil
	}
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return nil, unsupported("enum %v must have a string or integer kind", t)
	}
	symbols := reflect.New(t).Interface().(Enum).AvroSymbols()
	seen := map[string]bool{}
	for _, s := range symbols {
		if !validName(s) || seen[s] {
			return nil, unsupported("enum %v: symbol %q is not a unique Avro name", t, s)
		}
		seen[s] = true
	}
	if len(symbols) == 0 {
		return nil, unsupported("enum %v has no symbols", t)
	}
	n, err := d.define(t, kindEnum, "")
	if err != nil {
		return nil, err
	}
	n.symbols = symbols
	return n, nil
}

func (d *deriver) fixed(t reflect.Type, where string) (*avroType, error) {
	if n, ok := d.named[t]; ok {
		return n, nil
	}
	n, err := d.define(t, kindFixed, where)
	if err != nil {
		return nil, err
	}
	n.size = t.Len()
	return n, nil
}

// define creates a named type, registered before its body is built so that
// recursive types refer to themselves. Unnamed Go types (anonymous structs,
// [N]byte) take the name where and are not shared.
func (d *deriver) define(t reflect.Type, k kind, where string) (*avroType, error) {
	name, err := avroName(t, where)
	if err != nil {
		return nil, err
	}
	if other, clash := d.owners[name]; clash {
		return nil, unsupported("Go types %v and %v both have the Avro name %s; give one an AvroName method", other, t, name)
	}
	n := &avroType{kind: k, name: name}
	d.owners[name] = t
	if t.Name() != "" {
		d.named[t] = n
	}
	return n, nil
}

// avroName is a Go type's Avro full name: AvroName() if it has the method,
// else the last element of its package path and its type name.
func avroName(t reflect.Type, where string) (string, error) {
	if reflect.PointerTo(t).Implements(namerType) {
		name := reflect.New(t).Interface().(Namer).AvroName()
		for _, part := range strings.Split(name, ".") {
			if !validName(part) {
				return "", unsupported("%v.AvroName() = %q is not an Avro full name", t, name)
			}
		}
		return name, nil
	}
	if t.Name() == "" {
		return where, nil
	}
	if strings.ContainsRune(t.Name(), '[') {
		return "", unsupported("generic type %v needs an AvroName method", t)
	}
	return sanitize(path.Base(t.PkgPath())) + "." + t.Name(), nil
}

// validName reports whether s is an Avro name: [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r < unicode.MaxASCII && unicode.IsLetter(r) || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// sanitize makes a package name such as "go-kit" a valid Avro name part.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !validName(string(c)) && !(i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		b = append([]byte{'_'}, b...)
	}
	return string(b)
}

// tagDefault turns a default= tag value into the schema's default JSON,
// checked against the field type. Strings, enums and bytes may be written
// bare (default=open) or as JSON strings (default="a,b"); other types take
// JSON (default=0, default=[], default={"k":1}); timestamps also take RFC
// 3339. A pointer field with a non-null default becomes the union
// [T, "null"], since a union's default belongs to its first branch.
func tagDefault(ft *avroType, text string) (json.RawMessage, error) {
	target := ft
	if ft.kind == kindUnion {
		if text == "null" {
			return json.RawMessage("null"), nil
		}
		target = ft.branches[1]
		ft.branches[0], ft.branches[1] = ft.branches[1], ft.branches[0]
	}
	var v any = text
	switch target.kind {
	case kindString, kindEnum, kindBytes, kindFixed:
		if !strings.HasPrefix(text, `"`) {
			break
		}
		fallthrough
	default:
		var err error
		if v, err = decodeJSON([]byte(text)); err != nil {
			if timeUnit(target) == 0 {
				return nil, invalid("not JSON: %v", err)
			}
			v = text // an RFC 3339 timestamp
		}
	}
	native, err := fromJSON(target, v)
	if err != nil {
		return nil, err
	}
	return appendJSON(nil, target, native, true)
}

// goField is a struct field that maps to an Avro record field.
type goField struct {
	name   string // Avro field name
	goName string
	index  []int
	offset uintptr // from the start of the outer struct
	typ    reflect.Type
	opts   tagOpts
}

// structFields lists t's Avro fields in declaration order. Embedded structs
// (not pointers) without a tag name are flattened, as encoding/json does.
func structFields(t reflect.Type) ([]goField, error) {
	var out []goField
	seen := map[string]string{}
	var walk func(t reflect.Type, index []int, offset uintptr) error
	walk = func(t reflect.Type, index []int, offset uintptr) error {
		for i := range t.NumField() {
			sf := t.Field(i)
			opts, err := parseTag(sf.Tag.Get("avro"))
			if err != nil {
				return fmt.Errorf("field %s: %w", sf.Name, err)
			}
			idx := append(index[:len(index):len(index)], i)
			switch {
			case opts.skip:
				continue
			case sf.Anonymous && sf.Type.Kind() == reflect.Struct && opts.name == "" && sf.Type != timeType:
				if err := walk(sf.Type, idx, offset+sf.Offset); err != nil {
					return err
				}
				continue
			case !sf.IsExported():
				continue
			}
			name := opts.name
			if name == "" {
				name = snakeCase(sf.Name)
			}
			if !validName(name) {
				return unsupported("field %s: %q is not an Avro field name", sf.Name, name)
			}
			if prev, dup := seen[name]; dup {
				return unsupported("fields %s and %s both map to %q", prev, sf.Name, name)
			}
			seen[name] = sf.Name
			out = append(out, goField{name: name, goName: sf.Name, index: idx, offset: offset + sf.Offset, typ: sf.Type, opts: opts})
		}
		return nil
	}
	return out, walk(t, nil, 0)
}

// tagOpts is a parsed `avro:"name,micros,default=VALUE"` tag.
type tagOpts struct {
	name   string
	skip   bool
	micros bool
	hasDef bool
	def    string
}

// parseTag reads the avro struct tag. default= must come last and takes the
// rest of the tag verbatim, so default values may contain commas.
func parseTag(tag string) (tagOpts, error) {
	if tag == "-" {
		return tagOpts{skip: true}, nil
	}
	name, rest, _ := strings.Cut(tag, ",")
	o := tagOpts{name: name}
	for rest != "" {
		if d, ok := strings.CutPrefix(rest, "default="); ok {
			o.hasDef, o.def = true, d
			break
		}
		var opt string
		opt, rest, _ = strings.Cut(rest, ",")
		switch opt {
		case "micros":
			o.micros = true
		default:
			return o, unsupported("unknown avro tag option %q (known: micros, default=)", opt)
		}
	}
	return o, nil
}

// snakeCase turns a Go field name into the Avro field name: ItemID → item_id,
// HTTPServer → http_server, Total2 → total2.
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			acronymEnd := i > 0 && unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
