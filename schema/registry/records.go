package registry

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Key types of the log's records, as in Confluent's _schemas topic, plus
// MAX_ID (see the package documentation).
const (
	keySchema        = "SCHEMA"
	keyConfig        = "CONFIG"
	keyMode          = "MODE"
	keyDeleteSubject = "DELETE_SUBJECT"
	keyMaxID         = "MAX_ID"
)

// errBadRecord marks a log record the registry cannot use; it is logged and
// skipped so one bad record cannot stop a registry from starting.
var errBadRecord = errors.New("bad log record")

// recordKey is the JSON key of every record. The field order is fixed by the
// struct, so one logical key always has the same bytes, which a compacted
// topic needs to replace old values. An empty subject is the global scope
// and is omitted, as Confluent does.
type recordKey struct {
	KeyType string `json:"keytype"`
	Subject string `json:"subject,omitempty"`
	Version int    `json:"version,omitempty"`
	Magic   int    `json:"magic"`
}

// schemaValue is the value of a SCHEMA record: one version of a subject.
type schemaValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
	Deleted bool   `json:"deleted"`
}

// configValue is the value of a CONFIG record.
type configValue struct {
	Subject            string `json:"subject,omitempty"`
	CompatibilityLevel string `json:"compatibilityLevel"`
}

// modeValue is the value of a MODE record.
type modeValue struct {
	Subject string `json:"subject,omitempty"`
	Mode    string `json:"mode"`
}

// deleteSubjectValue is the value of a DELETE_SUBJECT record: every version
// of the subject up to Version is soft-deleted.
type deleteSubjectValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// maxIDValue is the value of the MAX_ID record.
type maxIDValue struct {
	ID int `json:"id"`
}

func schemaKey(subject string, version int) recordKey {
	return recordKey{KeyType: keySchema, Subject: subject, Version: version, Magic: 1}
}

func configKey(subject string) recordKey { return recordKey{KeyType: keyConfig, Subject: subject} }
func modeKey(subject string) recordKey   { return recordKey{KeyType: keyMode, Subject: subject} }
func deleteSubjectKey(subject string) recordKey {
	return recordKey{KeyType: keyDeleteSubject, Subject: subject}
}

// record encodes a key and a value; a nil value makes a tombstone.
func record(k recordKey, v any) Record {
	r := Record{Key: mustJSON(k)}
	if v != nil {
		r.Value = mustJSON(v)
	}
	return r
}

func tombstone(k recordKey) Record { return record(k, nil) }

// mustJSON marshals the record types above, which cannot fail to marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: marshal %T: %v", v, err))
	}
	return b
}

func schemaRecord(v schemaValue) Record {
	return record(schemaKey(v.Subject, v.Version), v)
}

func configRecord(subject string, level Level) Record {
	return record(configKey(subject), configValue{Subject: subject, CompatibilityLevel: string(level)})
}

func modeRecord(subject string, mode Mode) Record {
	return record(modeKey(subject), modeValue{Subject: subject, Mode: string(mode)})
}

func deleteSubjectRecord(subject string, upTo int) Record {
	return record(deleteSubjectKey(subject), deleteSubjectValue{Subject: subject, Version: upTo})
}

func maxIDRecord(id int) Record {
	return record(recordKey{KeyType: keyMaxID}, maxIDValue{ID: id})
}

// decodeValue unmarshals a record value, marking failures as bad records.
func decodeValue(k recordKey, value []byte, into any) error {
	if err := json.Unmarshal(value, into); err != nil {
		return fmt.Errorf("%w: %s value: %w", errBadRecord, k.KeyType, err)
	}
	return nil
}
