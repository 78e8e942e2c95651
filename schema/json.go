package schema

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file converts between JSON and goavro's native values for a schema:
// JSON → native for EncodeJSON and for field defaults, native → JSON for
// DecodeJSON. Natives are those of a codec without logical types (see
// schemaJSON): nil, bool, int32, int64, float32, float64, string, []byte,
// []any, map[string]any, and map[string]any{branch: value} for a non-null
// union value.

// timeUnit is the unit of a long timestamp logical type, 0 for none.
func timeUnit(t *avroType) time.Duration {
	switch t.logical {
	case "timestamp-millis", "local-timestamp-millis":
		return time.Millisecond
	case "timestamp-micros", "local-timestamp-micros":
		return time.Microsecond
	}
	return 0
}

func timeToLong(tm time.Time, unit time.Duration) int64 {
	if unit == time.Microsecond {
		return tm.UnixMicro()
	}
	return tm.UnixMilli()
}

func longToTime(x int64, unit time.Duration) time.Time {
	if unit == time.Microsecond {
		return time.UnixMicro(x).UTC()
	}
	return time.UnixMilli(x).UTC()
}

const (
	dateLayout      = "2006-01-02"
	localTimeLayout = "2006-01-02T15:04:05.999999999"
	secondsPerDay   = 24 * 60 * 60
)

// jsonKind names a decoded JSON value's type for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// fromJSON converts a JSON value decoded by decodeJSON to t's native value.
// It accepts plain JSON and Avro JSON: a union value may be bare or wrapped as
// {"branch": value}; timestamps and dates may also be RFC 3339 strings (the
// form DecodeJSON writes in plain mode); floats may be "NaN", "Infinity" or
// "-Infinity"; bytes and fixed are strings of code points 0-255 (Avro JSON).
func fromJSON(t *avroType, v any) (any, error) {
	switch t.kind {
	case kindNull:
		if v != nil {
			return nil, invalid("expected null, got %s", jsonKind(v))
		}
		return nil, nil
	case kindBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindInt:
		if s, ok := v.(string); ok && t.logical == "date" {
			d, err := time.Parse(dateLayout, s)
			if err != nil {
				return nil, invalid("date %q: want YYYY-MM-DD", s)
			}
			return int32(d.Unix() / secondsPerDay), nil
		}
		if n, ok := v.(json.Number); ok {
			i, err := strconv.ParseInt(string(n), 10, 32)
			if err != nil {
				return nil, invalid("%s is not an Avro int (32-bit integer)", n)
			}
			return int32(i), nil
		}
	case kindLong:
		if s, ok := v.(string); ok && timeUnit(t) != 0 {
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				if tm, err = time.Parse(localTimeLayout, s); err != nil {
					return nil, invalid("timestamp %q: want RFC 3339 or a number", s)
				}
			}
			return timeToLong(tm, timeUnit(t)), nil
		}
		if n, ok := v.(json.Number); ok {
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return nil, invalid("%s is not an Avro long (64-bit integer)", n)
			}
			return i, nil
		}
	case kindFloat, kindDouble:
		f, ok := jsonFloat(v)
		if !ok {
			break
		}
		if t.kind == kindFloat {
			return float32(f), nil
		}
		return f, nil
	case kindString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case kindBytes, kindFixed:
		s, ok := v.(string)
		if !ok {
			break
		}
		b, err := latin1Bytes(s)
		if err != nil {
			return nil, err
		}
		if t.kind == kindFixed && len(b) != t.size {
			return nil, invalid("fixed %s needs %d bytes, got %d", t.name, t.size, len(b))
		}
		return b, nil
	case kindEnum:
		if s, ok := v.(string); ok {
			if !contains(t.symbols, s) {
				return nil, invalid("%q is not a symbol of enum %s %v", s, t.name, t.symbols)
			}
			return s, nil
		}
	case kindArray:
		list, ok := v.([]any)
		if !ok {
			break
		}
		out := make([]any, len(list))
		for i, e := range list {
			x, err := fromJSON(t.elem, e)
			if err != nil {
				return nil, inIndex(i, err)
			}
			out[i] = x
		}
		return out, nil
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			x, err := fromJSON(t.elem, e)
			if err != nil {
				return nil, inKey(k, err)
			}
			out[k] = x
		}
		return out, nil
	case kindRecord:
		if m, ok := v.(map[string]any); ok {
			return recordFromJSON(t, m)
		}
	case kindUnion:
		return unionFromJSON(t, v)
	}
	return nil, invalid("expected %s, got %s", t.label(), jsonKind(v))
}

func recordFromJSON(t *avroType, m map[string]any) (any, error) {
	out := make(map[string]any, len(t.fields))
	given := 0
	for _, f := range t.fields {
		var x any
		var err error
		v, ok := m[f.name]
		switch {
		case ok:
			given++
			x, err = fromJSON(f.typ, v)
		case f.def != nil:
			x, err = defaultNative(f)
		default:
			err = invalid("missing, and the schema gives no default")
		}
		if err != nil {
			return nil, inField(f.name, err)
		}
		out[f.name] = x
	}
	if len(m) > given {
		for k := range m {
			if _, ok := out[k]; !ok {
				return nil, inField(k, invalid("record %s has no such field", t.name))
			}
		}
	}
	return out, nil
}

func unionFromJSON(t *avroType, v any) (any, error) {
	if v == nil {
		if t.nullIndex() < 0 {
			return nil, invalid("null is not allowed in %s", t.unionLabel())
		}
		return nil, nil
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			if b := t.branchByName(k); b != nil {
				return wrapBranch(b, inner)
			}
		}
	}
	var last error
	tried := 0
	for _, b := range t.branches {
		if b.kind == kindNull {
			continue
		}
		x, err := wrapBranch(b, v)
		if err == nil {
			return x, nil
		}
		last, tried = err, tried+1
	}
	if tried == 1 {
		return nil, last // the only candidate says precisely what is wrong
	}
	return nil, invalid("%s fits no branch of %s", jsonKind(v), t.unionLabel())
}

func wrapBranch(b *avroType, v any) (any, error) {
	x, err := fromJSON(b, v)
	if err != nil {
		return nil, err
	}
	return map[string]any{b.branchName(): x}, nil
}

// defaultNative converts a field's default to a fresh native value (fresh so
// that callers may keep or mutate it). A union's default is a value of its
// first branch.
func defaultNative(f *avroField) (any, error) {
	d, err := decodeJSON(f.def)
	if err != nil {
		return nil, invalid("default %s is not JSON: %v", f.def, err)
	}
	if f.typ.kind != kindUnion {
		return fromJSON(f.typ, d)
	}
	first := f.typ.branches[0]
	if first.kind == kindNull {
		return fromJSON(first, d)
	}
	return wrapBranch(first, d)
}

func (t *avroType) nullIndex() int {
	for i, b := range t.branches {
		if b.kind == kindNull {
			return i
		}
	}
	return -1
}

// branchByName finds a union branch by its goavro name, or by the short name
// of a named type (people write {"Address": {...}} by hand).
func (t *avroType) branchByName(name string) *avroType {
	for _, b := range t.branches {
		if b.branchName() == name || b.name != "" && shortName(b.name) == name {
			return b
		}
	}
	return nil
}

func (t *avroType) unionLabel() string {
	names := make([]string, len(t.branches))
	for i, b := range t.branches {
		names[i] = b.label()
	}
	return "union [" + strings.Join(names, ", ") + "]"
}

func jsonFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

// latin1Bytes reads Avro JSON's encoding of bytes: one code point per byte.
func latin1Bytes(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, invalid("bytes are written as code points 0-255, got %U", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// appendJSON writes native value x of type t as JSON. avro selects Avro JSON
// (non-null union values wrapped as {"branch": value}, logical types as their
// underlying numbers); otherwise plain JSON (unions unwrapped, timestamps as
// RFC 3339 strings, dates as YYYY-MM-DD). Both write bytes as Avro JSON does,
// record fields in schema order and map keys sorted, so output is stable.
func appendJSON(b []byte, t *avroType, x any, avro bool) ([]byte, error) {
	switch t.kind {
	case kindNull:
		if x == nil {
			return append(b, "null"...), nil
		}
	case kindBoolean:
		if v, ok := x.(bool); ok {
			return strconv.AppendBool(b, v), nil
		}
	case kindInt:
		if v, ok := x.(int32); ok {
			if !avro && t.logical == "date" {
				d := time.Unix(int64(v)*secondsPerDay, 0).UTC()
				return appendJSONString(b, d.Format(dateLayout)), nil
			}
			return strconv.AppendInt(b, int64(v), 10), nil
		}
	case kindLong:
		if v, ok := x.(int64); ok {
			if unit := timeUnit(t); !avro && unit != 0 {
				layout := time.RFC3339Nano
				if strings.HasPrefix(t.logical, "local-") {
					layout = localTimeLayout
				}
				return appendJSONString(b, longToTime(v, unit).Format(layout)), nil
			}
			return strconv.AppendInt(b, v, 10), nil
		}
	case kindFloat:
		if v, ok := x.(float32); ok {
			return appendFloat(b, float64(v), 32), nil
		}
	case kindDouble:
		if v, ok := x.(float64); ok {
			return appendFloat(b, v, 64), nil
		}
	case kindString, kindEnum:
		if v, ok := x.(string); ok {
			return appendJSONString(b, v), nil
		}
	case kindBytes, kindFixed:
		if v, ok := x.([]byte); ok {
			return appendLatin1(b, v), nil
		}
	case kindArray:
		if v, ok := x.([]any); ok {
			return appendJSONArray(b, t, v, avro)
		}
	case kindMap:
		if v, ok := x.(map[string]any); ok {
			return appendJSONMap(b, t, v, avro)
		}
	case kindRecord:
		if v, ok := x.(map[string]any); ok {
			return appendJSONRecord(b, t, v, avro)
		}
	case kindUnion:
		return appendJSONUnion(b, t, x, avro)
	}
	return nil, malformed("%s value decoded as %T", t.label(), x)
}

func appendJSONArray(b []byte, t *avroType, v []any, avro bool) ([]byte, error) {
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSON(b, t.elem, e, avro); err != nil {
			return nil, inIndex(i, err)
		}
	}
	return append(b, ']'), nil
}

func appendJSONMap(b []byte, t *avroType, v map[string]any, avro bool) ([]byte, error) {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, k), ':')
		var err error
		if b, err = appendJSON(b, t.elem, v[k], avro); err != nil {
			return nil, inKey(k, err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONRecord(b []byte, t *avroType, v map[string]any, avro bool) ([]byte, error) {
	b = append(b, '{')
	for i, f := range t.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, f.name), ':')
		var err error
		if b, err = appendJSON(b, f.typ, v[f.name], avro); err != nil {
			return nil, inField(f.name, err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONUnion(b []byte, t *avroType, x any, avro bool) ([]byte, error) {
	if x == nil {
		return append(b, "null"...), nil
	}
	name, inner, ok := unionValue(x)
	if !ok {
		return nil, malformed("%s value decoded as %T", t.unionLabel(), x)
	}
	branch := t.branchByName(name)
	if branch == nil {
		return nil, malformed("%s has no branch %q", t.unionLabel(), name)
	}
	if !avro {
		return appendJSON(b, branch, inner, avro)
	}
	b = append(appendJSONString(append(b, '{'), name), ':')
	b, err := appendJSON(b, branch, inner, avro)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// unionValue splits goavro's {branch: value} form of a non-null union value.
func unionValue(x any) (name string, v any, ok bool) {
	m, isMap := x.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for name, v = range m {
	}
	return name, v, true
}

// appendFloat writes NaN and infinities as the strings Java's Avro JSON
// encoder uses, since JSON numbers cannot hold them.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendLatin1 writes bytes as a JSON string of code points 0-255.
func appendLatin1(b []byte, v []byte) []byte {
	b = append(b, '"')
	for _, c := range v {
		if c < utf8.RuneSelf {
			b = appendEscaped(b, c)
			continue
		}
		b = utf8.AppendRune(b, rune(c))
	}
	return append(b, '"')
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b = appendEscaped(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func appendEscaped(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	}
	if c < 0x20 {
		const hex = "0123456789abcdef"
		return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
	}
	return append(b, c)
}
