package registry

import (
	"fmt"
	"net/http"
)

// Confluent's error codes. The HTTP status is the code's first three digits.
const (
	codeUnauthorized          = 40101
	codeSubjectNotFound       = 40401
	codeVersionNotFound       = 40402
	codeSchemaNotFound        = 40403
	codeSubjectSoftDeleted    = 40404
	codeSubjectNotSoftDeleted = 40405
	codeVersionSoftDeleted    = 40406
	codeVersionNotSoftDeleted = 40407
	codeSubjectLevelNotConfig = 40408
	codeSubjectModeNotConfig  = 40409
	codeIncompatible          = 409
	codeInvalidSchema         = 42201
	codeInvalidVersion        = 42202
	codeInvalidCompatibility  = 42203
	codeInvalidMode           = 42204
	codeOperationNotPermitted = 42205
	codeStoreError            = 50001
	codeBadRequest            = 400
	codeNotFound              = 404
	codeRequestTooLarge       = 413
	codeUnsupportedMediaType  = 415
)

// apiError is an error the REST API reports as Confluent does:
// {"error_code":N,"message":"..."} with the HTTP status derived from N.
type apiError struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
	// httpStatus overrides the status derived from Code, for the few
	// errors whose status Confluent does not encode in the code.
	httpStatus int
	// cause is the underlying failure of a store error, for logs.
	cause error
}

func (e *apiError) Error() string { return e.Message }

func (e *apiError) Unwrap() error { return e.cause }

// status is the HTTP status for the error code: the code itself if it is
// three digits, else its first three digits (40401 -> 404).
func (e *apiError) status() int {
	if e.httpStatus != 0 {
		return e.httpStatus
	}
	c := e.Code
	for c >= 1000 {
		c /= 10
	}
	if c < 100 || c > 599 {
		return http.StatusInternalServerError
	}
	return c
}

func apiErrorf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// The messages below are Confluent's, so clients matching on them keep
// working.

func errSubjectNotFound(subject string) *apiError {
	return apiErrorf(codeSubjectNotFound, "Subject '%s' not found.", subject)
}

func errVersionNotFound(version int) *apiError {
	return apiErrorf(codeVersionNotFound, "Version %d not found.", version)
}

func errSchemaNotFound() *apiError {
	return apiErrorf(codeSchemaNotFound, "Schema not found")
}

func errSchemaIDNotFound(id string) *apiError {
	return apiErrorf(codeSchemaNotFound, "Schema %s not found", id)
}

func errSubjectSoftDeleted(subject string) *apiError {
	return apiErrorf(codeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
}

func errSubjectNotSoftDeleted(subject string) *apiError {
	return apiErrorf(codeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
}

func errVersionSoftDeleted(subject string, version int) *apiError {
	return apiErrorf(codeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, version)
}

func errVersionNotSoftDeleted(subject string, version int) *apiError {
	return apiErrorf(codeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, version)
}

func errInvalidVersion(version string) *apiError {
	return apiErrorf(codeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", version)
}

func errInvalidLevel() *apiError {
	return apiErrorf(codeInvalidCompatibility, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
}

func errInvalidMode() *apiError {
	return apiErrorf(codeInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY and IMPORT.")
}

func errNotPermitted(format string, args ...any) *apiError {
	return apiErrorf(codeOperationNotPermitted, format, args...)
}

// errStore reports a failure of the Store as Confluent reports backend
// store errors.
func errStore(what string, cause error) *apiError {
	return &apiError{Code: codeStoreError, Message: fmt.Sprintf("Error in the backend data store while %s: %v", what, cause), cause: cause}
}

func errReadOnly(subject string) *apiError {
	return errNotPermitted("Subject %s is in read-only mode", subject)
}
