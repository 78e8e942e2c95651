package schema

import "context"

// LookupWriter exposes the writer-schema cache (the lookup Decode does per
// value) to the external benchmarks.
func (s *Serde) LookupWriter(ctx context.Context, id int) error {
	_, err := s.writer(ctx, id)
	return err
}

// DecodeDirect decodes with the direct decoder alone; it fails with
// ErrNoDirect when the plan has none.
func (s *Serde) DecodeDirect(ctx context.Context, topic string, data []byte, into any) error {
	return s.decode(ctx, topic, data, into, decodeDirectOnly)
}

// DecodeGoavro decodes through goavro and resolution alone.
func (s *Serde) DecodeGoavro(ctx context.Context, topic string, data []byte, into any) error {
	return s.decode(ctx, topic, data, into, decodeGoavroOnly)
}

// ErrNoDirect is the direct decoder's refusal.
var ErrNoDirect = errNoFast
