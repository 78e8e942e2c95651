package registry

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net/http"
	"runtime/debug"
)

// recoverPanics turns a panic in a handler into a logged 500 with error
// code 50001, so no input can take the registry down.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // the server's own signal to abort the response
				}
				s.writeError(w, r, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// refuseWhenClosed answers 503 once Close was called.
func (s *Server) refuseWhenClosed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.done.Err() != nil {
			s.writeError(w, r, &apiError{Code: codeStoreError, Message: "The schema registry is shutting down", httpStatus: http.StatusServiceUnavailable})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate demands HTTP basic credentials matching s.users, when set.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.users == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		want, known := s.users[user]
		// Compare even for unknown users so timing does not tell which
		// user names exist.
		match := subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
		if !ok || !known || !match {
			w.Header().Set("WWW-Authenticate", `Basic realm="schema-registry", charset="UTF-8"`)
			s.writeError(w, r, apiErrorf(codeUnauthorized, "Unauthorized"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// acceptedBodyTypes are the request content types Confluent accepts; a
// body without a content type is read as JSON too.
var acceptedBodyTypes = map[string]bool{
	"application/vnd.schemaregistry.v1+json": true,
	"application/vnd.schemaregistry+json":    true,
	"application/json":                       true,
	"application/octet-stream":               true,
}

// limitBody rejects request bodies larger than s.maxBytes with 413 and
// bodies of foreign content types with 415.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.maxBytes {
			s.writeError(w, r, errTooLarge(s.maxBytes))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && r.ContentLength != 0 {
			mediaType, _, err := mime.ParseMediaType(ct)
			if err != nil || !acceptedBodyTypes[mediaType] {
				s.writeError(w, r, apiErrorf(codeUnsupportedMediaType, "HTTP 415 Unsupported Media Type"))
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBytes)
		next.ServeHTTP(w, r)
	})
}

func errTooLarge(limit int64) *apiError {
	return apiErrorf(codeRequestTooLarge, "Request body is larger than the limit of %d bytes", limit)
}
