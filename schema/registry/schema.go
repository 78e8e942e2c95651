package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// maxSchemaDepth bounds how deeply a schema's JSON may nest. Real schemas
// stay far below it; without it a small request could stall the server,
// because hamba/avro's compatibility check takes time cubic in the depth
// (5000 nested arrays, 125 KB, take minutes).
const maxSchemaDepth = 128

// parsedSchema is an Avro schema with its canonical text, the text the
// registry stores, compares and returns.
type parsedSchema struct {
	canonical string
	avro      avro.Schema
}

// parseSchema validates an Avro schema and computes its canonical text.
//
// Avro's Parsing Canonical Form cannot be the registry's normal form: it
// drops defaults, docs and aliases, so two schemas that resolve differently
// would collapse into one id. Instead the JSON is decoded and re-encoded
// compactly with sorted object keys and numbers kept as written: whitespace
// and key order stop mattering, everything else is kept.
//
// Every parse uses a fresh SchemaCache, because hamba/avro's default cache
// is global and would let named types of one schema leak into the next.
func parseSchema(text string) (*parsedSchema, error) {
	if text == "" {
		return nil, errors.New("empty schema")
	}
	canonical, err := canonicalJSON(text)
	if err != nil {
		return nil, err
	}
	s, err := avro.ParseWithCache(canonical, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	return &parsedSchema{canonical: canonical, avro: s}, nil
}

// canonicalJSON re-encodes one JSON document compactly, with numbers as
// written and object keys in a fixed order: Avro's attributes in the order
// Avro itself prints them (so the text reads like a hand-written schema),
// then any others sorted.
func canonicalJSON(text string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("not JSON: data after the schema")
	}
	var buf bytes.Buffer
	if err := encodeCanonical(&buf, v, maxSchemaDepth); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// avroKeyOrder ranks the attributes of Avro schemas, fields and types.
var avroKeyOrder = map[string]int{
	"type": 1, "name": 2, "namespace": 3, "doc": 4, "aliases": 5, "fields": 6, "symbols": 7,
	"items": 8, "values": 9, "size": 10, "logicalType": 11, "precision": 12, "scale": 13,
	"default": 14, "order": 15,
}

func compareKeys(a, b string) int {
	ra, oka := avroKeyOrder[a]
	rb, okb := avroKeyOrder[b]
	switch {
	case oka && okb:
		return ra - rb
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// encodeCanonical writes v, as decoded by encoding/json with UseNumber,
// failing if objects and arrays nest deeper than depth.
func encodeCanonical(buf *bytes.Buffer, v any, depth int) error {
	switch v.(type) {
	case map[string]any, []any:
		if depth--; depth < 0 {
			return fmt.Errorf("schema nests deeper than %d levels", maxSchemaDepth)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		buf.WriteByte('{')
		for i, k := range slices.SortedFunc(maps.Keys(v), compareKeys) {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeString(buf, k)
			buf.WriteByte(':')
			if err := encodeCanonical(buf, v[k], depth); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeCanonical(buf, e, depth); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case string:
		encodeString(buf, v)
	case json.Number:
		buf.WriteString(v.String())
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected JSON value of type %T", v)
	}
	return nil
}

// encodeString writes s as a JSON string without HTML escaping, so schema
// docs read as written.
func encodeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}
