package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/recq/recq/tracing"
)

// contentType is what the registry answers with, as Confluent does.
const contentType = "application/vnd.schemaregistry.v1+json"

// endpoint serves one route: it returns the value to send as JSON (or a
// rawJSON to send verbatim), or an error, an *apiError for the client's
// mistakes and anything else for the server's.
type endpoint func(r *http.Request) (any, error)

// rawJSON is a response body that already is JSON: a schema's own text.
type rawJSON string

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, e endpoint) { mux.Handle(pattern, s.serve(e)) }

	handle("GET /{$}", func(*http.Request) (any, error) { return struct{}{}, nil })

	handle("GET /subjects", s.listSubjects)
	handle("POST /subjects/{subject}", s.lookupSchema)
	handle("DELETE /subjects/{subject}", s.deleteSubject)
	handle("GET /subjects/{subject}/versions", s.listVersions)
	handle("POST /subjects/{subject}/versions", s.register)
	handle("GET /subjects/{subject}/versions/{version}", s.getVersion)
	handle("GET /subjects/{subject}/versions/{version}/schema", s.getVersionSchema)
	handle("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)
	handle("GET /subjects/{subject}/versions/{version}/referencedby", s.referencedBy)

	handle("GET /schemas", s.listSchemas)
	handle("GET /schemas/types", func(*http.Request) (any, error) { return []string{"AVRO"}, nil })
	handle("GET /schemas/ids/{id}", s.getSchemaByID)
	handle("GET /schemas/ids/{id}/schema", s.getSchemaTextByID)
	handle("GET /schemas/ids/{id}/subjects", s.getSubjectsByID)
	handle("GET /schemas/ids/{id}/versions", s.getVersionsByID)

	handle("GET /contexts", s.listContexts)

	handle("GET /config", s.getConfig)
	handle("PUT /config", s.putConfig)
	handle("DELETE /config", s.deleteConfig)
	handle("GET /config/{subject}", s.getConfig)
	handle("PUT /config/{subject}", s.putConfig)
	handle("DELETE /config/{subject}", s.deleteConfig)

	handle("GET /mode", s.getMode)
	handle("PUT /mode", s.putMode)
	handle("DELETE /mode", s.deleteMode)
	handle("GET /mode/{subject}", s.getMode)
	handle("PUT /mode/{subject}", s.putMode)
	handle("DELETE /mode/{subject}", s.deleteMode)

	handle("POST /compatibility/subjects/{subject}/versions", s.checkCompatibility)
	handle("POST /compatibility/subjects/{subject}/versions/{version}", s.checkCompatibility)

	// Anything else (unknown paths, and known paths with the wrong method)
	// gets Confluent's JSON 404 rather than the mux's plain text.
	handle("/", func(*http.Request) (any, error) {
		return nil, apiErrorf(codeNotFound, "HTTP 404 Not Found")
	})

	return tracing.HTTPHandler(s.recoverPanics(s.refuseWhenClosed(s.authenticate(s.limitBody(mux)))))
}

// serve adapts an endpoint to HTTP: it runs it with a context that Close
// cancels and writes its result or error as Confluent does.
func (s *Server) serve(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.done, cancel)()

		v, err := e(r.WithContext(ctx))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", contentType)
		if raw, ok := v.(rawJSON); ok {
			_, _ = w.Write([]byte(raw))
			return
		}
		body, err := json.Marshal(v)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("encode response: %w", err))
			return
		}
		_, _ = w.Write(body)
	})
}

// writeError writes err as Confluent's error JSON. Errors that are not
// *apiError are the server's own failures: they are logged and reported as
// 50001 without details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.log.Error("schema registry request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		ae = apiErrorf(codeStoreError, "Internal Server Error")
	} else if ae.Code == codeStoreError {
		s.log.Error("schema registry store failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	body, _ := json.Marshal(ae) // apiError always marshals
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(ae.status())
	_, _ = w.Write(body)
}

// view runs fn on the state after catching up with the log, so a request
// sees every write committed before it, through any instance.
func (s *Server) view(ctx context.Context, fn func(*state) (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	return fn(s.st)
}

// update catches up with the log, lets decide turn the request into
// records, and appends them at the position it read to. If another writer
// appended first it catches up and decides again, so decisions (the next id,
// the next version, compatibility) are always made on the whole log. decide
// must not modify the state; returning no records ends the update without
// writing. After a write the server reads its own records back, so the state
// changes only by applying the log.
func (s *Server) update(ctx context.Context, decide func(*state) ([]Record, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range maxWriteAttempts {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
		records, err := decide(s.st)
		if err != nil || len(records) == 0 {
			return err
		}
		err = s.store.Write(ctx, s.pos, records)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return errStore("writing to the log", err)
		}
		return s.catchUp(ctx)
	}
	return errStore("writing to the log", fmt.Errorf("%w after %d attempts", ErrConflict, maxWriteAttempts))
}

// catchUp applies the records appended since the last call. s.mu is held.
func (s *Server) catchUp(ctx context.Context) error {
	records, end, err := s.store.Read(ctx, s.pos)
	if err != nil {
		return errStore("reading the log", err)
	}
	for _, r := range records {
		if err := s.st.apply(r); err != nil {
			s.log.Warn("schema registry skipped a log record", "key", string(r.Key), "error", err)
		}
	}
	s.pos = end
	return nil
}

// decodeBody decodes the JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return errTooLarge(tooBig.Limit)
		}
		return apiErrorf(codeBadRequest, "Invalid JSON request body: %v", err)
	}
	return nil
}

// latestVersion stands for "latest" (or -1) in a version path segment.
const latestVersion = -1

// parseVersion parses a version path segment as Confluent does: "latest",
// -1, or a number in [1, 2^31-1].
func parseVersion(s string) (int, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "latest") {
		return latestVersion, nil
	}
	v, err := strconv.Atoi(t)
	if err != nil || v == 0 || v < latestVersion || v > math.MaxInt32 {
		return 0, errInvalidVersion(s)
	}
	return v, nil
}

// flag reports whether query parameter name is "true" (in any case), as
// Confluent reads boolean parameters.
func flag(r *http.Request, name string) bool {
	return strings.EqualFold(r.URL.Query().Get(name), "true")
}
