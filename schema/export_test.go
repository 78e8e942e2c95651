package schema

import "context"

// LookupWriter exposes the writer-schema cache (the lookup Decode does per
// value) to the external benchmarks.
func (s *Serde) LookupWriter(ctx context.Context, id int) error {
	_, err := s.writer(ctx, id)
	return err
}
