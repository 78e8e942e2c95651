package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Every error the package returns wraps at most one of them
// with %w, so callers branch with errors.Is and show the message as is.
//
// Each says what it means for an event that meets it, through methods a
// failure policy asks for (package deadletter does), so no policy needs to
// know this package: Permanent() reports whether trying again cannot help,
// and Undecodable() whether the payload itself cannot be read, so the same
// bytes will never decode.
var (
	// ErrSchemaNotRegistered: auto-registration is off and the registry has no
	// such schema under the subject.
	ErrSchemaNotRegistered error = &kindError{"schema not registered", true, false}
	// ErrUnknownSchemaID: a framed value names a schema id the registry does
	// not know.
	ErrUnknownSchemaID error = &kindError{"unknown schema id", true, true}
	// ErrNotFramed: the bytes do not start with the Confluent wire-format
	// header (magic byte 0 and a 4-byte schema id).
	ErrNotFramed error = &kindError{"not Confluent-framed", true, true}
	// ErrIncompatible: two schemas, or a schema and a Go type, do not fit
	// together: the registry refused a new version, a writer schema cannot be
	// read with the reader's, or a supplied .avsc does not match its Go type.
	ErrIncompatible error = &kindError{"incompatible schema", true, true}
	// ErrInvalidValue: a value (Go or JSON) does not fit its schema. The error
	// is a *FieldError naming the field when the problem is inside a record.
	ErrInvalidValue error = &kindError{"invalid value", true, false}
	// ErrUnsupportedType: a Go type has no Avro mapping (channels, funcs,
	// interfaces, complex numbers, maps with non-string keys, ...), or a
	// registry schema uses a feature the serde does not handle.
	ErrUnsupportedType error = &kindError{"unsupported type", true, true}
	// ErrMalformed: the Avro payload is corrupt or truncated.
	ErrMalformed error = &kindError{"malformed Avro data", true, true}
	// ErrRegistryUnavailable: the registry did not give an answer (not
	// reachable, timed out, or failed with a server error): nothing is
	// known about the schema yet, and asking again later may succeed. The
	// error also wraps the cause.
	ErrRegistryUnavailable error = &kindError{"schema registry unavailable", false, false}
)

// kindError is a sentinel that says what it means for an event.
type kindError struct {
	msg                    string
	permanent, undecodable bool
}

func (e *kindError) Error() string { return e.msg }

// Permanent reports whether trying again cannot help.
func (e *kindError) Permanent() bool { return e.permanent }

// Undecodable reports whether the payload itself cannot be read.
func (e *kindError) Undecodable() bool { return e.undecodable }

// FieldError locates a problem inside a record: Field is a path such as
// `address.city`, `tags[2]` or `labels["k"]`. It unwraps to the cause, which
// wraps one of the sentinel errors.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %v", e.Field, e.Err) }

func (e *FieldError) Unwrap() error { return e.Err }

// inField prefixes err's path with a record field name. Errors are wrapped as
// they unwind, so the hot path builds no path strings unless something fails.
func inField(name string, err error) error { return prefixPath(name, err) }

// inIndex prefixes err's path with an array index.
func inIndex(i int, err error) error { return prefixPath("["+strconv.Itoa(i)+"]", err) }

// inKey prefixes err's path with a map key.
func inKey(k string, err error) error { return prefixPath("["+strconv.Quote(k)+"]", err) }

func prefixPath(seg string, err error) error {
	fe, ok := err.(*FieldError)
	if !ok {
		return &FieldError{Field: seg, Err: err}
	}
	if !strings.HasPrefix(fe.Field, "[") {
		seg += "."
	}
	return &FieldError{Field: seg + fe.Field, Err: fe.Err}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidValue}, args...)...)
}

func incompatible(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIncompatible}, args...)...)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupportedType}, args...)...)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
