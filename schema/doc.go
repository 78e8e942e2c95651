// Package schema is recq's serde: it turns Go values into Confluent-framed
// Avro record values and back, through a Confluent-compatible schema registry
// (recq's own, in schema/registry, or any other). [*Serde] implements
// streams.Codec.
//
// # Wire format
//
// A value is byte 0 (magic), the schema id as a 4-byte big-endian integer,
// then the Avro binary encoding. github.com/twmb/franz-go/pkg/sr frames it
// and talks to the registry; github.com/linkedin/goavro/v2 decodes values
// of other writer schemas, and encodes JSON input and defaults. Typed values are encoded by the package's
// own compiled encoders, which validate on the way and write what goavro
// writes (the tests check it byte for byte) at a fraction of the cost of
// building goavro's native maps. Map entries are written in key order, so a
// value always encodes to the same bytes. Bytes without the header fail with
// [ErrNotFramed].
//
// # Schemas from Go types
//
// Events and commands are plain structs. Their Avro record schema is derived
// by reflection, once per type ([SchemaOf] shows it):
//
//   - Name: "<last element of the package path>.<Type>", e.g. todo.ItemAdded,
//     unless the type implements [Namer] (AvroName() string returns the full
//     name). Generic types must implement Namer. Nested named structs are
//     named the same way; anonymous structs and [N]byte after the field that
//     holds them ("todo.ItemAdded_address").
//   - Field names: the avro tag's name, else the Go name in snake_case
//     (ItemID → item_id, HTTPServer → http_server). Unexported fields and
//     fields tagged avro:"-" are skipped; embedded structs without a tag name
//     are flattened, as encoding/json does.
//   - Types: bool → boolean; int8, int16, int32, uint8, uint16 → int; int,
//     int64, uint, uint32, uint64 → long (values above MaxInt64 are refused);
//     float32 → float; float64 → double; string → string; []byte → bytes;
//     [N]byte → fixed(N); time.Time → long timestamp-millis (timestamp-micros
//     with the micros option), decoded in UTC; time.Duration → long
//     nanoseconds; *T → union ["null", T] with default null; []T and [N]T →
//     array; map[string]T (any string-kinded key) → map; structs → records
//     (recursive types allowed); a type implementing [Enum] → enum.
//     Interfaces, funcs, channels, complex numbers and other map keys have no
//     form ([ErrUnsupportedType]).
//
// # Tag syntax
//
//	avro:"name"                      field name
//	avro:"-"                         skip the field
//	avro:",micros"                   time.Time as timestamp-micros
//	avro:"name,default=VALUE"        the schema default (used by readers
//	                                 whose writers lack the field)
//
// default= must come last and takes the rest of the tag verbatim, so values
// may contain commas. VALUE is JSON (default=0, default=true, default=[],
// default={"k":1}, default=null); for string, enum and bytes fields it may
// also be bare text (default=open; quote it as JSON, default="x", to keep
// leading quotes); for time.Time an RFC 3339 timestamp or a number. The value
// is checked against the field type when the schema is derived. A pointer
// field with a non-null default becomes the union [T, "null"], since Avro
// takes a union's default from its first branch. Add a default to every field
// you add to an existing type, or readers of old records cannot fill it.
//
// A hand-written .avsc can replace derivation for a type ([WithSchema]); the
// struct's fields are matched to the schema's by the same naming rule, and
// every Go field must be in the schema.
//
// # Subjects and registration
//
// Subjects follow TopicRecordNameStrategy, "<topic>-<record full name>"
// ([SubjectFor]), so several event types share a topic. With
// [WithAutoRegister](true) (development) Encode registers the type's schema on
// first use; by default (production) it only looks the schema up and fails
// with [ErrSchemaNotRegistered], naming the subject and the command that
// registers it. A registry refusing an incompatible version gives
// [ErrIncompatible].
//
// # Validation
//
// Encode checks every field as it encodes (nil for a non-optional field, int
// overflow, unknown enum symbols, invalid UTF-8 in strings and map keys,
// float overflow; NaN is allowed), so a value that does not fit returns no
// bytes and registers nothing, with a [*FieldError] naming the field path
// (e.g. `schema: encode todo.ItemAdded: field "address.city": ...`), wrapping
// [ErrInvalidValue].
//
// # Evolution
//
// A value written with the Go type's own schema is read straight into the
// struct by the package's direct decoder. Any other writer's value is decoded
// by goavro with the writer's schema; the package then resolves the
// writer's values to the reader's schema (the Go type's) by Avro's rules:
// reader fields the writer lacks take their defaults, writer fields the
// reader lacks are dropped, int→long→float→double and string↔bytes are
// promoted, enum symbols unknown to the reader take the reader's enum default,
// union branches are matched by type, timestamp units are converted. A writer
// that cannot be read gives [ErrIncompatible] naming the field. Writer schemas
// are fetched by id once per Serde, concurrent callers sharing one request; an
// id the registry does not know gives [ErrUnknownSchemaID].
//
// # Generic JSON
//
// [Serde.DecodeJSON] and [Serde.EncodeJSON] serve tools that know no Go types
// (recq consume, replay, produce --subject).
//
// # Registry outages
//
// A schema id never changes meaning, so a Serde keeps every writer schema
// it has fetched, and every schema it registered or looked up to encode,
// for its whole life: it decodes what it wrote, and anything it read once,
// without the registry. What it has never seen needs the registry. A
// process that starts while the registry is down can therefore encode
// nothing new and decode nothing until it is back, however long that
// takes: the failure is a fetch error (not ErrUnknownSchemaID, not
// ErrMalformed), which recq's runners retry as transient, so nothing is
// refused or dead-lettered meanwhile; they resume within a retry (at most
// 2 s for the aggregate runner) of the registry answering again.
//
// # Concurrency and cost
//
// A Serde is safe for concurrent use. Everything is compiled once: per Go type
// its schema and a tree of encoding and decoding closures (no tag parsing or
// type inspection per call), per (writer id, type) the resolution, which is
// the identity when both schemas agree. Cache lookups take no lock and
// allocate nothing. Warm, Encode allocates only its result; Decode of a value
// in the type's own schema allocates little beyond what the struct holds (strings,
// slices, maps, pointers), and otherwise costs goavro's decoding plus storing
// its natives into the struct.
package schema
