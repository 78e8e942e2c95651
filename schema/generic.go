package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

// Generic is a payload decoded with its writer's schema alone, for readers
// that know no Go types (data tools, `recq replay`).
type Generic struct {
	Type     string // the writer schema's full name; "" for an unnamed schema
	SchemaID int
	// JSON is the value as plain JSON (see DecodeJSON): record fields in
	// schema order, map keys sorted, so equal values give equal bytes.
	JSON []byte
}

// Map returns the payload as Go values: map[string]any for a record,
// json.Number for numbers. It errs for a payload that is not a record.
func (g Generic) Map() (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(g.JSON))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("schema: %s (schema id %d) is not a record: %w", g.Type, g.SchemaID, err)
	}
	return m, nil
}

// GenericDecoder decodes framed values to Generic through the registry:
// the writer schema is fetched by id, once per Serde, whatever the type.
func (s *Serde) GenericDecoder() streams.Decoder[Generic] {
	return func(ctx context.Context, r *kgo.Record) (Generic, error) { return s.generic(ctx, r.Value, false) }
}

func (s *Serde) generic(ctx context.Context, data []byte, avroJSON bool) (Generic, error) {
	id, payload, err := unframe(data)
	if err != nil {
		return Generic{}, err
	}
	w, err := s.writer(ctx, id)
	if err != nil {
		return Generic{}, err
	}
	native, err := w.native(id, payload)
	if err != nil {
		return Generic{}, err
	}
	out, err := appendJSON(nil, w.node, native, avroJSON)
	if err != nil {
		return Generic{}, fmt.Errorf("schema: schema id %d: %w", id, err)
	}
	return Generic{Type: w.node.name, SchemaID: id, JSON: out}, nil
}
