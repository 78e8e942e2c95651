package registry

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// priorSchema is an earlier version a new schema is checked against.
type priorSchema struct {
	version int
	schema  avro.Schema
}

// checkCompatibility checks schema against prior (ascending by version) as
// level demands: against every prior version if the level is transitive,
// else against the newest only. It returns one message per failed check,
// newest version first, then the level (as Confluent ends its list), or
// none if schema is compatible.
func checkCompatibility(level Level, schema avro.Schema, prior []priorSchema) []string {
	if len(prior) == 0 || level == LevelNone {
		return nil
	}
	if !level.transitive() {
		prior = prior[len(prior)-1:]
	}
	var msgs []string
	for i := len(prior) - 1; i >= 0; i-- {
		p := prior[i]
		if level.backward() {
			if err := compatible(schema, p.schema); err != nil {
				msgs = append(msgs, fmt.Sprintf("new schema cannot read data written with version %d: %v", p.version, err))
			}
		}
		if level.forward() {
			if err := compatible(p.schema, schema); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d cannot read data written with the new schema: %v", p.version, err))
			}
		}
	}
	if len(msgs) > 0 {
		msgs = append(msgs, fmt.Sprintf("{compatibility: '%s'}", level))
	}
	return msgs
}

// compatible reports whether a reader with schema reader can decode data
// written with schema writer, by the Avro schema resolution rules.
//
// It makes a fresh checker per call on purpose: hamba/avro's
// SchemaCompatibility caches results keyed by the schemas' canonical form,
// which ignores defaults, so a reused checker answers a later question with
// the result of an earlier pair that differed only in a default.
func compatible(reader, writer avro.Schema) error {
	return avro.NewSchemaCompatibility().Compatible(reader, writer)
}
