package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/streams"
)

var _ streams.Codec = (*Serde)(nil)

// Config configures a Serde. The zero value is valid: strict registration and
// schemas derived from the Go types.
type Config struct {
	// AutoRegister registers a type's schema under its subject on first use
	// (development). Off, the schema must already be registered (production);
	// Encode then only looks it up.
	AutoRegister bool
	// Schemas gives the .avsc to use for a struct type instead of the derived
	// one. The schema must be a record; the struct's fields are matched to it
	// by name (tag, else snake_case).
	Schemas map[reflect.Type]string
}

// Validate reports a configuration that cannot work: a supplied schema that
// does not parse, is not a record, or does not fit its Go type.
func (c Config) Validate() error {
	for t, avsc := range c.Schemas {
		if t == nil || t.Kind() != reflect.Struct {
			// A pointer key would never match: types are looked up as structs.
			return unsupported("schema: Config.Schemas keys must be struct types, got %v", t)
		}
		if _, err := newTypeInfo(t, avsc); err != nil {
			return err
		}
	}
	return nil
}

// Option configures a Serde.
type Option func(*Config)

// WithAutoRegister turns automatic registration on or off (off by default).
func WithAutoRegister(on bool) Option { return func(c *Config) { c.AutoRegister = on } }

// WithSchema uses avsc for v's type (a struct or a pointer to one) instead of
// the derived schema. The text is registered as given, so a file registered
// with `recq schema register` is found again in strict mode.
func WithSchema(v any, avsc string) Option {
	return func(c *Config) {
		t := reflect.TypeOf(v)
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if c.Schemas == nil {
			c.Schemas = map[reflect.Type]string{}
		}
		c.Schemas[t] = avsc
	}
}

// Serde turns Go values into Confluent-framed Avro and back, through a
// schema registry. It is safe for concurrent use. Every cache it keeps is
// filled once and read lock-free afterwards: per Go type its schema and
// compiled conversions, per (topic, type) the registered id, per id the
// writer schema, per (id, type) the compiled resolution.
type Serde struct {
	client *sr.Client
	cfg    Config

	types   readMap[reflect.Type, *typeInfo]
	plans   readMap[planKey, *plan]
	ids     onceMap[subjectKey, int]    // registered id per (topic, type)
	writers onceMap[int, *writerSchema] // writer schema per id
	latest  onceMap[string, int]        // latest id per subject, for EncodeJSON
}

// NewSerde returns a Serde using client as the registry.
func NewSerde(client *sr.Client, opts ...Option) (*Serde, error) {
	if client == nil {
		return nil, errors.New("schema: NewSerde needs a registry client (sr.NewClient)")
	}
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Serde{client: client, cfg: cfg}
	s.ids.load, s.writers.load, s.latest.load = s.register, s.fetchWriter, s.fetchLatest
	return s, nil
}

// SubjectFor is the subject of a record on a topic, by Confluent's
// TopicRecordNameStrategy: several event types share a topic, each with its
// own subject and history.
func SubjectFor(topic, recordFullName string) string { return topic + "-" + recordFullName }

// typeInfo is everything compiled for one Go type.
type typeInfo struct {
	name string // record full name: the recq-type header and the subject suffix
	avsc string // the text registered
	node *avroType
	bd   *binding
	size atomic.Int64 // largest encoded size so far, to allocate buffers once
}

func newTypeInfo(t reflect.Type, avsc string) (*typeInfo, error) {
	st, err := structType(t)
	if err != nil {
		return nil, err
	}
	var node *avroType
	if avsc == "" {
		d := derived(st)
		if d.err != nil {
			return nil, d.err
		}
		node, avsc = d.node, d.avsc
	} else {
		if node, err = parseSchema(avsc); err != nil {
			return nil, fmt.Errorf("schema: supplied schema for %v: %w", st, err)
		}
		if node.kind != kindRecord {
			return nil, fmt.Errorf("schema: supplied schema for %v is a %s, want a record", st, node.kind)
		}
	}
	bd, err := bind(node, st)
	if err != nil {
		return nil, fmt.Errorf("schema: %v does not fit schema %s: %w", st, node.name, err)
	}
	return &typeInfo{name: node.name, avsc: avsc, node: node, bd: bd}, nil
}

// info returns the compiled type, building it on first use. Two goroutines
// may build it at once; the result is the same and one is kept.
func (s *Serde) info(t reflect.Type) (*typeInfo, error) {
	if ti, ok := s.types.load(t); ok {
		return ti, nil
	}
	ti, err := newTypeInfo(t, s.cfg.Schemas[t])
	if err != nil {
		return nil, err
	}
	return s.types.storeOnce(t, ti), nil
}

// TypeName returns the record full name of v's type (a struct or a pointer
// to one): what Encode returns and what the recq-type header carries.
func (s *Serde) TypeName(v any) (string, error) {
	t, err := structType(reflect.TypeOf(v))
	if err != nil {
		return "", err
	}
	ti, err := s.info(t)
	if err != nil {
		return "", err
	}
	return ti.name, nil
}

var header sr.ConfluentHeader

type subjectKey struct {
	topic string
	t     reflect.Type
}

// Encode validates v (a struct or a pointer to one) against its schema,
// resolves the schema id under subject <topic>-<record full name> (registering
// it in auto mode), and returns the framed Avro value and the record's full
// name. A value that does not fit is refused before anything is encoded or
// registered, with a *FieldError naming the field.
func (s *Serde) Encode(ctx context.Context, topic string, v any) ([]byte, string, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() || rv.Kind() != reflect.Struct {
		return nil, "", unsupported("schema: Encode wants a struct or a non-nil pointer to one, got %T", v)
	}
	ti, err := s.info(rv.Type())
	if err != nil {
		return nil, "", err
	}
	// Encode before resolving the id, so a value that does not fit is refused
	// before anything is registered; the id is patched into the header after.
	buf, _ := header.AppendEncode(make([]byte, 0, max(ti.size.Load(), 64)), 0, nil)
	if buf, err = ti.bd.enc(buf, rv); err != nil {
		return nil, "", fmt.Errorf("schema: encode %s: %w", ti.name, err)
	}
	id, err := s.ids.get(ctx, subjectKey{topic, rv.Type()})
	if err != nil {
		return nil, "", err
	}
	_ = header.UpdateID(buf, uint32(id)) // cannot fail: buf starts with a header
	if n := int64(len(buf)); n > ti.size.Load() {
		ti.size.Store(n) // a racing smaller store only costs a later append
	}
	return buf, ti.name, nil
}

// Register resolves the schemas of samples (structs or pointers to them)
// under their subjects on topic now, as Encode would on first use:
// registering them in auto mode, checking they are registered in strict
// mode. A service registers its payloads at start this way, so clients
// (`recq send`, a foreign producer) find them before its first message.
func (s *Serde) Register(ctx context.Context, topic string, samples ...any) error {
	for _, v := range samples {
		t := reflect.TypeOf(v)
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return unsupported("schema: Register wants structs or pointers to them, got %T", v)
		}
		if _, err := s.ids.get(ctx, subjectKey{topic, t}); err != nil {
			return err
		}
	}
	return nil
}

// register resolves the id of a type's schema under its subject on a topic:
// registering it in auto mode, looking it up in strict mode.
func (s *Serde) register(ctx context.Context, k subjectKey) (int, error) {
	ti, err := s.info(k.t)
	if err != nil {
		return 0, err
	}
	subject := SubjectFor(k.topic, ti.name)
	sch := sr.Schema{Schema: ti.avsc, Type: sr.TypeAvro}
	if s.cfg.AutoRegister {
		id, err := s.client.RegisterSchema(ctx, subject, sch, -1, -1)
		switch {
		case registryCode(err) == sr.ErrIncompatibleSchema.Code:
			return 0, fmt.Errorf("schema: register %s under subject %q: %w: %v", ti.name, subject, ErrIncompatible, err)
		case err != nil:
			return 0, fmt.Errorf("schema: register %s under subject %q: %w", ti.name, subject, unanswered(err))
		}
		s.remember(id, ti)
		return id, nil
	}
	ss, err := s.client.LookupSchema(ctx, subject, sch)
	switch code := registryCode(err); {
	case code == sr.ErrSubjectNotFound.Code || code == sr.ErrSchemaNotFound.Code:
		return 0, fmt.Errorf("schema: subject %q: %w: this version of %s is not in the registry and auto-registration is off; "+
			"register it with `recq schema register %s --file %s.avsc` (schema.SchemaOf gives the .avsc) or enable schema.WithAutoRegister(true)",
			subject, ErrSchemaNotRegistered, ti.name, subject, shortName(ti.name))
	case err != nil:
		return 0, fmt.Errorf("schema: look up %s under subject %q: %w", ti.name, subject, unanswered(err))
	}
	s.remember(ss.ID, ti)
	return ss.ID, nil
}

// unanswered marks a registry failure that is no answer about the schema
// (no connection, a timeout, a 5xx, a 408 or a 429) with
// ErrRegistryUnavailable: asking again may succeed. Another 4xx is the
// registry's answer and stays as it is.
func unanswered(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
}

// registryCode is the Confluent error code of a registry error, 0 if none.
func registryCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

// writerSchema is a schema fetched by id, as goavro decodes it.
type writerSchema struct {
	node  *avroType
	codec *goavro.Codec
}

// writer returns the schema with the given id, fetched once per Serde.
func (s *Serde) writer(ctx context.Context, id int) (*writerSchema, error) {
	return s.writers.get(ctx, id)
}

func (s *Serde) fetchWriter(ctx context.Context, id int) (*writerSchema, error) {
	sch, err := s.client.SchemaByID(ctx, id)
	switch {
	case registryCode(err) == sr.ErrSchemaNotFound.Code:
		return nil, fmt.Errorf("schema: schema id %d: %w", id, ErrUnknownSchemaID)
	case err != nil:
		return nil, fmt.Errorf("schema: fetch schema id %d: %w", id, unanswered(err))
	case sch.Type != sr.TypeAvro:
		return nil, unsupported("schema: schema id %d is %s, not Avro", id, sch.Type)
	case len(sch.References) > 0:
		return nil, unsupported("schema: schema id %d uses schema references", id)
	}
	return newWriter(id, sch.Schema)
}

func newWriter(id int, avsc string) (*writerSchema, error) {
	node, err := parseSchema(avsc)
	if err != nil {
		return nil, fmt.Errorf("schema: schema id %d: %w", id, err)
	}
	codec, err := goavro.NewCodec(schemaJSON(node, false))
	if err != nil {
		return nil, fmt.Errorf("schema: schema id %d: %w", id, err)
	}
	return &writerSchema{node: node, codec: codec}, nil
}

// remember keeps the schema a type was encoded with as the writer schema
// of its id, so what a process wrote it can read back without the registry
// (an aggregate runner loading its own events during a registry outage).
func (s *Serde) remember(id int, ti *typeInfo) {
	if _, ok := s.writers.done.load(id); ok {
		return
	}
	if w, err := newWriter(id, ti.avsc); err == nil {
		s.writers.done.storeOnce(id, w)
	}
}

// unframe splits the Confluent header from the Avro payload.
func unframe(data []byte) (int, []byte, error) {
	id, payload, err := header.DecodeID(data)
	if err != nil {
		return 0, nil, fmt.Errorf("schema: %w: want magic byte 0 and a 4-byte schema id, got %d bytes starting %q",
			ErrNotFramed, len(data), data[:min(len(data), 5)])
	}
	return id, payload, nil
}

// native decodes a payload written with w to goavro's natives.
func (w *writerSchema) native(id int, payload []byte) (any, error) {
	native, rest, err := w.codec.NativeFromBinary(payload)
	switch {
	case err != nil:
		return nil, fmt.Errorf("schema: schema id %d: %w: %v", id, ErrMalformed, err)
	case len(rest) > 0:
		return nil, fmt.Errorf("schema: schema id %d: %w: %d bytes left after the value", id, ErrMalformed, len(rest))
	}
	return native, nil
}

type planKey struct {
	id int
	t  reflect.Type
}

// plan is everything Decode needs for one (writer id, Go type) pair, behind
// a single cache lookup.
type plan struct {
	w   *writerSchema
	ti  *typeInfo
	res *resolution
	err error // the writer cannot be read as the type
	// direct: the writer schema is the type's own, so the payload is read
	// straight into the struct (binary.go); cleared when the type turns out
	// to hold something the direct decoder does not read.
	direct atomic.Bool
}

func (s *Serde) plan(ctx context.Context, id int, t reflect.Type) (*plan, error) {
	k := planKey{id, t}
	if p, ok := s.plans.load(k); ok {
		return p, nil
	}
	ti, err := s.info(t)
	if err != nil {
		return nil, err
	}
	w, err := s.writer(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &plan{w: w, ti: ti}
	if p.res, p.err = resolve(w.node, ti.node); p.err != nil {
		p.err = fmt.Errorf("writer schema id %d (%s) cannot be read as %s: %w", id, w.node.label(), ti.name, p.err)
	}
	p.direct.Store(p.err == nil && schemaJSON(w.node, true) == schemaJSON(ti.node, true))
	return s.plans.storeOnce(k, p), nil
}

// Decode reads a framed value into into, a non-nil pointer to a struct. The
// writer's schema (fetched by id, once) is resolved against the struct's
// schema, so values written by older or newer versions of the type decode:
// added fields take their defaults, removed fields are skipped, numbers are
// promoted. topic only labels errors. On error into may be partly written.
func (s *Serde) Decode(ctx context.Context, topic string, data []byte, into any) error {
	return s.decode(ctx, topic, data, into, decodeAny)
}

// decodeWith chooses the decoders Decode may use; tests pin one to compare.
type decodeWith uint8

const (
	decodeAny decodeWith = iota
	decodeDirectOnly
	decodeGoavroOnly
)

func (s *Serde) decode(ctx context.Context, topic string, data []byte, into any, with decodeWith) error {
	rv := reflect.ValueOf(into)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return unsupported("schema: Decode wants a non-nil pointer to a struct, got %T", into)
	}
	id, payload, err := unframe(data)
	if err != nil {
		return fmt.Errorf("%w (topic %q)", err, topic)
	}
	p, err := s.plan(ctx, id, rv.Type().Elem())
	if err != nil {
		return fmt.Errorf("%w (topic %q)", err, topic)
	}
	if p.err != nil {
		return fmt.Errorf("schema: topic %q: %w", topic, p.err)
	}
	if with == decodeDirectOnly && !p.direct.Load() {
		return errNoFast
	}
	if with != decodeGoavroOnly && p.direct.Load() {
		r := binReader{b: payload}
		err := p.ti.bd.bin(&r, rv.UnsafePointer())
		if err == nil && len(r.b) > 0 {
			err = malformed("%d bytes left after the value", len(r.b))
		}
		if !errors.Is(err, errNoFast) || with == decodeDirectOnly {
			if err != nil {
				return fmt.Errorf("schema: decode %s from topic %q (schema id %d): %w", p.ti.name, topic, id, err)
			}
			return nil
		}
		p.direct.Store(false)
	}
	native, err := p.w.native(id, payload)
	if err != nil {
		return fmt.Errorf("%w (topic %q)", err, topic)
	}
	if native, err = p.res.apply(native); err == nil {
		err = p.ti.bd.dec(native, rv.UnsafePointer())
	}
	if err != nil {
		return fmt.Errorf("schema: decode %s from topic %q (schema id %d): %w", p.ti.name, topic, id, err)
	}
	return nil
}

// DecodeJSON decodes a framed value with its writer's schema alone, for tools
// that know no Go types. avroJSON selects Avro's JSON encoding (non-null
// union values as {"branch": value}, timestamps as numbers); otherwise plain
// JSON (unions unwrapped, timestamps as RFC 3339 strings, dates as
// YYYY-MM-DD). In both, bytes are strings of code points 0-255 as in Avro
// JSON, record fields keep schema order and map keys are sorted.
func (s *Serde) DecodeJSON(ctx context.Context, data []byte, avroJSON bool) ([]byte, error) {
	g, err := s.generic(ctx, data, avroJSON)
	return g.JSON, err
}

// EncodeJSON encodes one JSON value with the latest schema of subject
// (looked up once per Serde) and frames it. It takes plain or Avro JSON (see
// DecodeJSON; union values may be bare or wrapped). Missing fields take their
// defaults; unknown fields are refused. A bad value is refused with an error
// wrapping ErrInvalidValue that names the field.
func (s *Serde) EncodeJSON(ctx context.Context, subject string, jsonValue []byte) ([]byte, error) {
	id, err := s.latest.get(ctx, subject)
	if err != nil {
		return nil, err
	}
	w, err := s.writer(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(jsonValue)
	if err != nil {
		return nil, fmt.Errorf("schema: encode JSON for subject %q: %w: not a JSON value: %v", subject, ErrInvalidValue, err)
	}
	native, err := fromJSON(w.node, v)
	if err != nil {
		return nil, fmt.Errorf("schema: encode JSON for subject %q: %w", subject, err)
	}
	buf, _ := header.AppendEncode(nil, id, nil)
	if buf, err = w.codec.BinaryFromNative(buf, native); err != nil {
		return nil, fmt.Errorf("schema: encode JSON for subject %q: %w: %v", subject, ErrInvalidValue, err)
	}
	return buf, nil
}

func (s *Serde) fetchLatest(ctx context.Context, subject string) (int, error) {
	ss, err := s.client.SchemaByVersion(ctx, subject, -1)
	switch code := registryCode(err); {
	case code == sr.ErrSubjectNotFound.Code || code == sr.ErrVersionNotFound.Code:
		return 0, fmt.Errorf("schema: subject %q: %w: register one with `recq schema register %s --file x.avsc`",
			subject, ErrSchemaNotRegistered, subject)
	case err != nil:
		return 0, fmt.Errorf("schema: latest schema of subject %q: %w", subject, unanswered(err))
	}
	return ss.ID, nil
}
