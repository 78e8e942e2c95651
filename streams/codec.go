package streams

import "context"

// Codec turns payload values into record values and back. Encode returns the
// value bytes and the payload's full type name, written to the recq-type
// header. The schema package implements it with Confluent-framed Avro.
type Codec interface {
	Encode(ctx context.Context, topic string, v any) (value []byte, typeName string, err error)
	Decode(ctx context.Context, topic string, value []byte, into any) error
}

// TypedCodec is a Codec that also names the type a value travels under
// (recq-type), so handlers registered by Go type can be matched to records
// by name. schema.Serde implements it.
type TypedCodec interface {
	Codec
	TypeName(v any) (string, error)
}
