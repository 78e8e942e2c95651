package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema"
)

// jsonEncoder turns JSON values into Confluent-framed Avro with schemas
// registered in the registry: what `recq produce --subject` and `recq
// send` share.
type jsonEncoder struct {
	cl    *sr.Client
	serde *schema.Serde
}

// jsonEncoder connects to --registry.
func (g *globals) jsonEncoder(ctx context.Context) (*jsonEncoder, error) {
	cl, err := g.registryClient(ctx)
	if err != nil {
		return nil, err
	}
	serde, err := schema.NewSerde(cl)
	if err != nil {
		return nil, err
	}
	return &jsonEncoder{cl: cl, serde: serde}, nil
}

// encode encodes one JSON value with the latest schema of subject. Missing
// fields take their defaults, unknown ones are refused; the error names
// the field.
func (e *jsonEncoder) encode(ctx context.Context, subject string, value []byte) ([]byte, error) {
	b, err := e.serde.EncodeJSON(ctx, subject, value)
	if err != nil {
		return nil, registryErr(err)
	}
	return b, nil
}

// typeName is the full name of the schema a framed value was encoded
// with (namespace.name of the Avro record): the payload type, which the
// recq-type header carries whatever the subject is called. It is "" for
// a schema without a name (a primitive, an array, a union).
func (e *jsonEncoder) typeName(ctx context.Context, framed []byte) (string, error) {
	var h sr.ConfluentHeader
	id, _, err := h.DecodeID(framed)
	if err != nil {
		return "", fmt.Errorf("reading the schema id of an encoded value: %w", err)
	}
	s, err := e.cl.SchemaByID(ctx, id)
	if err != nil {
		return "", fmt.Errorf("schema id %d: %w", id, registryErr(err))
	}
	return avroFullName(s.Schema), nil
}

// avroFullName is the full name of a named Avro schema (record, enum or
// fixed): its name if that has a dot, else namespace.name, else the name
// alone. Other schemas have none: "".
func avroFullName(avsc string) string {
	var named struct {
		Type      any    `json:"type"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	if json.Unmarshal([]byte(avsc), &named) != nil || named.Name == "" {
		return ""
	}
	switch named.Type {
	case "record", "error", "enum", "fixed":
	default:
		return ""
	}
	if strings.Contains(named.Name, ".") || named.Namespace == "" {
		return named.Name
	}
	return named.Namespace + "." + named.Name
}
